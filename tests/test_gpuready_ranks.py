"""Two processes fill the latent cache unevenly, one of them meeting a damaged row: both wait out the slow one, drop the row
before any sampler is built, and free their text encoders. The default process group here times out after 5 seconds while
one rank caches 12 seconds longer, as NCCL's 10-minute collective timeout would against an hour of uneven caching."""
import json, os, subprocess, sys
from dreamfuse_lit.core.files import data_path
from dreamfuse_lit.world.manifest import IMAGE_FIELDS, image_path, read_manifest, write_manifest

SCRIPT = """
import json, sys, time, warnings; warnings.simplefilter("ignore")
from datetime import timedelta
import torch; torch.set_num_threads(1)
from accelerate import Accelerator
from accelerate.utils import InitProcessGroupKwargs
import dreamfuse_lit.dreamfuse.sft as sft
from dreamfuse_lit.core.training import TrainConfig, get_task
manifest, cache, out = sys.argv[1:4]
acc = Accelerator(cpu=True, kwargs_handlers=[InitProcessGroupKwargs(backend="gloo", timeout=timedelta(seconds=5))])
cfg = TrainConfig(method="sft", pretrained="tiny", data=manifest, output_dir=out, report_to="none",
                  task=dict(scales=(64,), max_sequence_length=32, cache_dir=cache, sample_steps=1, sample_count=1))
task = get_task(cfg)
module = task.build(cfg, acc)
fill = sft.cache_manifest
def late(*args, **kwargs):
    if acc.process_index == 1: time.sleep(12)  # rank 1 finishes its share long after rank 0
    return fill(*args, **kwargs)
sft.cache_manifest = late
ds, sampler, collate = task.data(cfg, acc)
drawn = sorted({ds[key]["id"] for epoch in range(3) for batch in (sampler.set_epoch(epoch), sampler)[1] for key in batch})
samples = task.sample(module, cfg) if acc.is_main_process else []
print("RESULT", json.dumps(dict(rank=acc.process_index, ids=[r["id"] for r in ds.rows], drawn=drawn, errors=[str(e) for e in ds.errors],
                                freed=[task.pipe.text_encoder is None, task.pipe.text_encoder_2 is None], samples=len(samples))), flush=True)
torch.distributed.destroy_process_group()
"""

def test_uneven_ranks_and_a_damaged_row(tmp_path):
    demo = data_path("demo", "manifest.jsonl")
    rows = [{**r, **{f: str(image_path(r, f, demo)) for f in IMAGE_FIELDS}} for r in read_manifest(demo)[:3]]
    cut = tmp_path / "cut.png"  # row 0 (rank 0's share): a background cut short, its header intact
    cut.write_bytes(open(rows[0]["background"], "rb").read()[:1000])
    manifest = write_manifest([{**rows[0], "background": str(cut)}, *rows[1:]], tmp_path / "manifest.jsonl")
    (tmp_path / "run.py").write_text(SCRIPT)
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "2", "--num_machines", "1", "--multi_gpu",
           "--mixed_precision", "no", "--dynamo_backend", "no", str(tmp_path / "run.py"), str(manifest), str(tmp_path / "cache"), str(tmp_path / "out")]
    r = subprocess.run(cmd, env=os.environ | {"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    results = sorted((json.loads(l.split("RESULT ", 1)[1]) for l in r.stdout.splitlines() if "RESULT " in l), key=lambda x: x["rank"])
    assert [x["rank"] for x in results] == [0, 1], r.stdout[-3000:]
    kept = [row["id"] for row in rows[1:]]
    for x in results:
        assert x["ids"] == kept, x                      # both ranks dropped row 0, which only rank 0 tried to cache
        assert set(x["drawn"]) <= set(kept), x           # so no sampler can draw it, and every drawn key loads
        assert len(x["errors"]) == 1 and x["errors"][0].startswith(f"{manifest}:1: scale 64: cannot read image {cut}"), x
        assert x["freed"] == [True, True], x             # T5 and CLIP are gone once the prompts are cached
    assert results[0]["samples"] == 3                    # validation fuses with the cached empty prompt
    assert f"dropped 1 rows that could not be cached:\n{manifest}:1:" in r.stdout

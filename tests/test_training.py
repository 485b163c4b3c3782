"What a notebook can't show well: training in two processes, a run killed and resumed, damaged checkpoints."
import json, os, signal, subprocess, time
from pathlib import Path
import pytest, torch
from safetensors.torch import load_file
from dreamfuse_lit.core.training import TrainConfig, save_config, launch, launch_command

TASK = dict(scales=(64,), max_sequence_length=16, sample_steps=1, sample_count=1)


def tiny_cfg(out, cache, method="sft", **kw):
    task = {**TASK, "cache_dir": str(cache), **kw.pop("task", {})}
    return TrainConfig(method=method, pretrained="tiny", output_dir=str(out), lr=1e-3, report_to="none", task=task, **kw)


def weights(run) -> dict:
    final = Path(run) / "final"
    return {f"{f.name}/{k}": v for f in sorted(final.glob("*.safetensors")) for k, v in load_file(f).items()}


def assert_same(a, b):
    assert a.keys() == b.keys() and a
    for k in a: assert (a[k] == b[k]).all(), f"{k} differs"


@pytest.fixture(scope="module")
def cache(tmp_path_factory): return tmp_path_factory.mktemp("latents")


def test_two_processes_both_stages(tmp_path, cache):
    "Stage 1 then LDPO on 2 gloo processes: both finish and both ranks hold the same weights."
    sft = tiny_cfg(tmp_path / "sft", cache, steps=4, batch_size=2, checkpoint_every=2)
    launch(save_config(sft, tmp_path / "sft.yaml"), num_processes=2, log=lambda l: None)
    ldpo = tiny_cfg(tmp_path / "ldpo", cache, "ldpo", steps=3, checkpoint_every=3, task=dict(stage1_lora=str(tmp_path / "sft" / "final")))
    launch(save_config(ldpo, tmp_path / "ldpo.yaml"), num_processes=2, log=lambda l: None)
    for run in ("sft", "ldpo"):
        ranks = json.loads((tmp_path / run / "final" / "ranks.json").read_text())["weights_sha256"]
        assert len(ranks) == 2 and ranks[0] == ranks[1], run
        assert json.loads((tmp_path / run / "checkpoints" / sorted(os.listdir(tmp_path / run / "checkpoints"))[-1] / "checkpoint.json").read_text())["world_size"] == 2


PROBE = """
import gc, json, os, torch
from torch.nn.parallel import DistributedDataParallel
from dreamfuse_lit.core.toy_task import ToyTask
_destroy = torch.distributed.destroy_process_group
def destroy_process_group(group=None):
    if "PROBE_LOG" in os.environ:
        live = sum(isinstance(o, DistributedDataParallel) for o in gc.get_objects())
        with open(os.environ["PROBE_LOG"], "a") as f: f.write(json.dumps(live) + "\\n")
    return _destroy(group)
torch.distributed.destroy_process_group = destroy_process_group
"""


def test_ddp_goes_before_its_process_group(tmp_path, monkeypatch):
    "Each rank destroys its process group with no DDP wrapper alive: a reducer left as the group's last owner can deadlock at exit."
    (tmp_path / "ddp_probe.py").write_text(PROBE)
    monkeypatch.syspath_prepend(tmp_path)  # launch checks the method here before it starts the ranks
    monkeypatch.setattr(torch.distributed, "destroy_process_group", torch.distributed.destroy_process_group)  # undone after
    cfg = TrainConfig(method="ddp_probe:ToyTask", output_dir=str(tmp_path / "run"), lr=.1, batch_size=8, report_to="none", steps=4, checkpoint_every=4)
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]), "PROBE_LOG": str(tmp_path / "live.jsonl")}
    launch(save_config(cfg, tmp_path / "run.yaml"), num_processes=2, log=lambda l: None, env=env)
    live = [json.loads(l) for l in (tmp_path / "live.jsonl").read_text().splitlines()]
    assert live[:2] == [0, 0], live  # the first destroy of each rank: end_training's


def _run_until_checkpoint(config, ckpt: Path, timeout=300):
    "Start a 1-process training and SIGKILL its whole process group as soon as `ckpt` is complete."
    proc = subprocess.Popen(launch_command(config), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    t0 = time.time()
    while not (ckpt / "checkpoint.json").exists():
        assert proc.poll() is None, "training ended before the checkpoint to kill at"
        assert time.time() - t0 < timeout
        time.sleep(.02)
    os.killpg(proc.pid, signal.SIGKILL); proc.wait()


def test_kill_resume_and_damaged_checkpoints(tmp_path, cache):
    "A run killed after a checkpoint and resumed ends bit-identical to an uninterrupted one, also when the newest checkpoint is damaged."
    common = dict(steps=12, checkpoint_every=3, keep_checkpoints=5, lr_scheduler="cosine", warmup_steps=2, optimizer="adamw")
    straight = tiny_cfg(tmp_path / "straight", cache, **common)
    launch(save_config(straight, tmp_path / "straight.yaml"), log=lambda l: None)

    killed = tiny_cfg(tmp_path / "killed", cache, **common)
    config = save_config(killed, tmp_path / "killed.yaml")
    ckpts = tmp_path / "killed" / "checkpoints"
    _run_until_checkpoint(config, ckpts / "checkpoint-000006")
    done = sorted(p.name for p in ckpts.glob("checkpoint-*"))
    assert "checkpoint-000012" not in done, done
    # damage the newest checkpoint and leave a half-written one: both must be skipped with a message
    newest = ckpts / done[-1]
    f = newest / "optimizer.pt"; b = bytearray(f.read_bytes()); b[len(b) // 2] ^= 0xFF; f.write_bytes(bytes(b))
    half = ckpts / "checkpoint-000099"; half.mkdir(); (half / "trainable.safetensors").write_bytes(b"\0" * 10)
    lines = []
    launch(config, log=lines.append)
    out = "\n".join(lines)
    assert f"skipping checkpoint {half}: no checkpoint.json" in out, out[-2000:]
    assert f"skipping checkpoint {newest}: optimizer.pt does not match its recorded SHA-256" in out, out[-2000:]
    assert "resumed from" in out and f"at step {int(done[-2].split('-')[1])}" in out, out[-2000:]
    assert_same(weights(tmp_path / "straight"), weights(tmp_path / "killed"))
    logged = lambda run: [r["loss"] for r in map(json.loads, (tmp_path / run / "metrics.jsonl").read_text().splitlines())]
    assert logged("straight") == logged("killed")

"Two processes that fill one latent cache at once, with the same work, must leave a complete and valid cache."
import os, subprocess, sys, warnings
import torch
from dreamfuse_lit.world.manifest import IMAGE_FIELDS, image_path, read_manifest, write_manifest
from dreamfuse_lit.dreamfuse.latents import LatentCache, cache_manifest
from dreamfuse_lit.core.files import data_path
from dreamfuse_lit.core.zoo import load_flux_pipeline

CODE = """
import sys, torch, warnings; torch.set_num_threads(1); warnings.simplefilter("ignore")
from dreamfuse_lit.dreamfuse.latents import cache_manifest, LatentCache
from dreamfuse_lit.core.zoo import load_flux_pipeline
stats = cache_manifest(sys.argv[1], load_flux_pipeline("tiny"), LatentCache(sys.argv[2], "tiny"), scales=(64, 128),
                       max_sequence_length=32, progress=False)
print(stats["misses"], len(stats["errors"]))
"""

def test_concurrent_cache_fills_agree(tmp_path):
    demo = data_path("demo", "manifest.jsonl")
    rows = [{**r, **{f: str(image_path(r, f, demo)) for f in IMAGE_FIELDS}} for r in read_manifest(demo)[:3]]
    manifest = write_manifest(rows, tmp_path / "manifest.jsonl")
    root = tmp_path / "raced"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    procs = [subprocess.Popen([sys.executable, "-c", CODE, str(manifest), str(root)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err
        assert out.split()[1] == "0", out  # no item failed
    # the same work in this process, into a cache of its own: the reference
    torch.set_num_threads(1)
    reference = LatentCache(tmp_path / "reference", "tiny")
    stats = cache_manifest(manifest, load_flux_pipeline("tiny"), reference, scales=(64, 128), max_sequence_length=32, progress=False)
    assert stats["misses"] == 3 * 2 * 4 + 4 and not stats["errors"], stats  # 3 rows x 2 scales x 4 images, 3 prompts + ""
    files = sorted(root.rglob("*"))
    entries = [f for f in files if f.is_file()]
    assert all(f.suffix == ".safetensors" and not f.name.startswith(".") for f in entries), "temporary files left behind"
    assert sorted(f.name for f in entries) == sorted(f.name for f in reference.root.rglob("*.safetensors"))
    raced = LatentCache(root, "tiny")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an unreadable entry warns
        for f in entries:
            got, want = raced.load(f.stem), reference.load(f.stem)
            assert got.keys() == want.keys()
            # equal up to rounding: which images a process finds missing decides its batch, and the VAE's convolutions
            # round a batch of one differently from a batch of several (about 5e-7 here)
            for k in want: torch.testing.assert_close(got[k], want[k], msg=lambda m: f"{f.name} {k}: {m}")

"Two processes that build the same tiny model family at once must both end up with one valid copy."
import os, subprocess, sys

CODE = """
from dreamfuse_lit.core.zoo import tiny_dir, load_clip
d = tiny_dir('clip')
model, processor = load_clip('tiny')
print(d, sum(p.numel() for p in model.parameters()))
"""

def test_concurrent_tiny_builds_agree(tmp_path):
    env = {**os.environ, "DREAMFUSE_LIT_CACHE": str(tmp_path), "HF_HUB_OFFLINE": "1"}
    procs = [subprocess.Popen([sys.executable, "-c", CODE], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err
    results = {out.strip() for out, _ in outs}
    assert len(results) == 1, results  # same directory, same model
    entries = sorted(p.name for p in tmp_path.iterdir())
    assert len(entries) == 1 and entries[0].startswith("tiny-clip-"), f"expected one finished build, found {entries}"

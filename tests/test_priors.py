"Class-scene priors drawn by two processes equal those of one process, image for image; a two-process rerun redraws only what is missing."
import json, os, subprocess, sys
import numpy as np
import torch
from PIL import Image
from dreamfuse_lit.comfusion.priors import generate_priors, prior_plan, read_priors

PROMPTS = ["a dog in the rain", "a dog on the sofa", "a dog in the snow"]
N, SIZE, STEPS = 7, 32, 3


def launch_priors(out_dir, num_processes=2, timeout=240) -> str:
    "Run `python -m dreamfuse_lit.comfusion.priors` under `accelerate launch` (gloo on the CPU); returns its output."
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(num_processes), "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", "--multi_gpu",
           "-m", "dreamfuse_lit.comfusion.priors", "--pretrained", "tiny", *[a for p in PROMPTS for a in ("--prompt", p)],
           "--n", str(N), "--out-dir", str(out_dir), "--steps", str(STEPS), "--size", str(SIZE), "--batch-size", "2", "--no-progress"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-4000:]
    return proc.stdout


def pixels(path): return np.asarray(Image.open(path), dtype=np.int16)
def backdate(folder):
    for p in folder.glob("prior-*.png"): os.utime(p, (0, 0))
def written(folder): return {p.name for p in folder.glob("prior-*.png") if p.stat().st_mtime > 0}


def test_two_processes_equal_one(tmp_path):
    out = launch_priors(tmp_path / "two")
    # one summary line, from the main process, counting both ranks' images: the work was shared, not done twice
    assert out.count("class-scene priors") == 1 and f"{tmp_path / 'two'}: drew {N} of {N} class-scene priors, 0 were already there" in out, out[-2000:]
    torch.set_num_threads(1)
    generate_priors("tiny", PROMPTS, N, tmp_path / "one", num_inference_steps=STEPS, height=SIZE, width=SIZE, batch_size=3,
                    progress=False, log=lambda s: None)
    two, one = read_priors(tmp_path / "two", check_images=True), read_priors(tmp_path / "one", check_images=True)
    plan = prior_plan(PROMPTS, N)
    assert [(r["index"], r["prompt"], r["seed"], r["file"]) for r in two] == [(e["index"], e["prompt"], e["seed"], e["file"]) for e in plan]
    assert [{k: r[k] for k in ("index", "prompt", "seed", "file")} for r in two] == [{k: r[k] for k in ("index", "prompt", "seed", "file")} for r in one]
    assert json.loads((tmp_path / "two" / "priors.json").read_text()) == json.loads((tmp_path / "one" / "priors.json").read_text())
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == sorted([e["file"] for e in plan] + ["manifest.jsonl", "priors.json"])
    for a, b in zip(two, one):
        assert a["path"] != b["path"]
        diff = np.abs(pixels(a["path"]) - pixels(b["path"])).max()
        assert diff <= 1, (a["file"], diff)  # batches differ (rank 0 draws 0,2,4,6; one process 0,1,2), so ±1 grey level at most
    assert len({pixels(r["path"]).tobytes() for r in two}) == N  # and the images are not all alike

    # one image lost from each rank's share: a two-process rerun redraws exactly those two
    backdate(tmp_path / "two")  # a file dated 1970 after the rerun was not rewritten
    (tmp_path / "two" / "prior-00003.png").unlink()  # rank 1's
    p4 = tmp_path / "two" / "prior-00004.png"        # rank 0's, damaged
    p4.write_bytes(p4.read_bytes()[:100])
    out = launch_priors(tmp_path / "two")
    assert out.count("class-scene priors") == 1 and f"drew 2 of {N} class-scene priors, {N - 2} were already there" in out, out[-2000:]
    assert written(tmp_path / "two") == {"prior-00003.png", "prior-00004.png"}
    for r in read_priors(tmp_path / "two", check_images=True):
        assert np.abs(pixels(r["path"]) - pixels(tmp_path / "one" / r["file"])).max() <= 1, r["file"]

"train_ldpo.ipynb with a real model and no stage-1 LoRA refuses before training anything (the tiny default still trains its short stage 1)."
import os, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAPERMILL = Path(sys.executable).with_name("papermill")

def test_ldpo_refuses_a_silent_short_stage1(tmp_path):
    run = tmp_path / "run"
    cmd = [str(PAPERMILL), "nbs/train_ldpo.ipynb", str(tmp_path / "out.ipynb"), "-p", "pretrained", "black-forest-labs/FLUX.1-dev",
           "-p", "output_dir", str(run)]
    r = subprocess.run(cmd, cwd=ROOT, env=os.environ | {"HF_HUB_OFFLINE": "1"}, capture_output=True, text=True, timeout=300)
    assert r.returncode != 0
    assert "stage1_lora is empty with pretrained='black-forest-labs/FLUX.1-dev'" in r.stdout + r.stderr, (r.stdout + r.stderr)[-3000:]
    assert not (run / "stage1").exists()  # nothing was trained

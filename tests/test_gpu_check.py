"`bench/gpu_check.py --dry-run`: the prepared GPU script runs end to end on CPU with small shapes (about 1-3 minutes)."
import json, os, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_dry_run(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_check.py"), "--dry-run", "--out", str(tmp_path)],
                          capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    res = json.loads(next(tmp_path.glob("cpu-dry-run-*.json")).read_text())
    S = res["sections"]
    assert list(S) == ["equivalence", "training", "pipeline", "comfusion", "fsdp"], list(S)
    assert not [k for k, r in S.items() if "error" in r], {k: r.get("error") for k, r in S.items()}
    assert S["equivalence"]["ok"], S["equivalence"]
    assert {f"{v}_{s}" for v in ("sft", "ldpo_joint", "ldpo_two_pass") for s in (64, 128)} <= set(S["training"])
    assert S["pipeline"]["on_device"]["s_per_image"] > 0
    assert S["comfusion"]["flop_ratio_comfusion_vs_dreambooth"] > 1
    assert S["fsdp"]["ok"] and S["fsdp"]["sharded_checkpoint"] is False  # on CPU accelerate runs the FSDP config unsharded
    table = next(tmp_path.glob("cpu-dry-run-*.md")).read_text()
    assert "dreamfuse_forward vs stock forward" in table and "FAILED" not in table, table

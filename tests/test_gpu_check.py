"`bench/gpu_check.py --dry-run`: the prepared GPU script runs end to end on CPU with small shapes (about 1-3 minutes)."
import json, os, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}


def dry_run(out:Path, sections:str) -> subprocess.Popen:
    "Start the dry run of `sections` into `out`, its output in `out/log.txt`."
    out.mkdir()
    with open(out / "log.txt", "w") as log:
        return subprocess.Popen([sys.executable, str(ROOT / "bench" / "gpu_check.py"), "--dry-run", "--out", str(out), "--sections", sections],
                                stdout=log, stderr=subprocess.STDOUT, env=ENV)


def test_gpu_check_dry_run(tmp_path):
    # the ComFusion section (its own subprocesses, one thread each) beside the rest: the two cores of a CI machine both work
    procs = {"main": dry_run(tmp_path / "main", "equivalence,training,pipeline,fsdp"), "comfusion": dry_run(tmp_path / "comfusion", "comfusion")}
    for name, p in procs.items():
        assert p.wait(timeout=900) == 0, f"{name}: {(tmp_path / name / 'log.txt').read_text()[-5000:]}"
    S = {}
    for name in procs: S |= json.loads(next((tmp_path / name).glob("cpu-dry-run-*.json")).read_text())["sections"]
    assert sorted(S) == sorted(["equivalence", "training", "pipeline", "comfusion", "fsdp"]), list(S)
    assert not [k for k, r in S.items() if "error" in r], {k: r.get("error") for k, r in S.items()}
    assert S["equivalence"]["ok"], S["equivalence"]
    assert {f"{v}_{s}" for v in ("sft", "ldpo_joint", "ldpo_two_pass") for s in (64, 128)} <= set(S["training"])
    assert S["pipeline"]["on_device"]["s_per_image"] > 0
    assert S["comfusion"]["flop_ratio_comfusion_vs_dreambooth"] > 1
    assert S["fsdp"]["ok"] and S["fsdp"]["sharded_checkpoint"] is False  # on CPU accelerate runs the FSDP config unsharded
    table = next((tmp_path / "main").glob("cpu-dry-run-*.md")).read_text()
    assert "dreamfuse_forward vs stock forward" in table and "FAILED" not in table, table

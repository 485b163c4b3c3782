"""One round of the data loop (nbs/datagen_round.ipynb) under papermill, as a server runs it: with its defaults into a fresh
folder, again on that folder (a rerun makes nothing: no prompt asked, no triplet drawn, no row judged), and with decisions
that come from a person and from a file. What the notebook's own checks cannot see is across runs: files left as they were,
`round.json` of the second run, the decisions file as the next run reads it.
"""
import hashlib, json, os, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
NB = ROOT / "nbs" / "datagen_round.ipynb"
PAPERMILL = Path(sys.executable).with_name("papermill")


def papermill(cwd:Path, *params:str) -> dict:
    "Run the notebook with papermill in `cwd` (the default out_dir is relative to it); the round's `round.json`."
    cmd = [str(PAPERMILL), str(NB), str(cwd / f"executed-{len(list(cwd.glob('executed-*')))}.ipynb"), "--no-progress-bar"]
    for p in params: cmd += ["-p", *p.split("=", 1)]
    r = subprocess.run(cmd, cwd=cwd, env=os.environ | {"HF_HUB_OFFLINE": "1", "PYTHONHASHSEED": "0"}, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    out = dict(p.split("=", 1) for p in params).get("out_dir", "runs/datagen_round")
    return json.loads((cwd / out / "round.json").read_text())


def snapshot(folder:Path) -> dict:
    "What a rerun must leave as it was: the contents of prompts, triplets and filter results, and the images' times (never redrawn)."
    files = [p for sub in ("prompts", "triplets", "dice", "filter") for p in sorted((folder / sub).rglob("*")) if p.is_file()]
    return {p: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns if p.suffix == ".png" else None) for p in files}


@pytest.fixture(scope="module")
def first_round(tmp_path_factory):
    "A round run with the notebook's defaults, no -p at all, in a fresh folder."
    cwd = tmp_path_factory.mktemp("round")
    return cwd, papermill(cwd)


def test_defaults_then_a_rerun_that_makes_nothing(first_round):
    cwd, first = first_round
    folder = cwd / "runs" / "datagen_round"
    assert first["made"] == {"prompts": 8, "triplets": 8, "dice": 8, "judged": 8}, first
    assert first["decided_by"] == {"filter": 8} and first["band"] == "fixed", first
    kept = [json.loads(l)["id"] for l in (folder / "selected.jsonl").read_text().splitlines()]
    decisions = json.loads((folder / "decisions.json").read_text())
    assert kept == [i for i, d in decisions.items() if d["decision"] == "keep"] and len(kept) == first["kept"]
    before = snapshot(folder)
    assert len([p for p in before if p.suffix == ".png"]) == 4 * 8
    again = papermill(cwd)
    assert again["made"] == {"prompts": 0, "triplets": 0, "dice": 0, "judged": 0}, again
    assert snapshot(folder) == before, "the rerun rewrote prompts, triplets or filter results"


def test_decisions_of_a_person_and_of_a_file(first_round, tmp_path):
    "A person's decision (as the gallery saves it) outlives a rerun; `auto_keep` names a file for the rest; the file is whole."
    cwd, _ = first_round  # the round above, continued (a copy would not resume: the filter's settings hold the candidates' absolute path)
    folder = cwd / "runs" / "datagen_round"
    decisions = json.loads((folder / "decisions.json").read_text())
    ids = list(decisions)
    decisions[ids[0]] = {"decision": "keep", "by": "person"}  # what a click on "keep" writes
    decisions[ids[1]] = {"decision": "keep", "by": "file old.json"}  # an earlier run's auto_keep file: not kept over this run's
    (folder / "decisions.json").write_text(json.dumps(decisions))
    (tmp_path / "picks.json").write_text(json.dumps({ids[0]: "reject", ids[2]: "keep", ids[3]: "reject"}))
    run = papermill(cwd, f"out_dir={folder}", f"auto_keep={tmp_path / 'picks.json'}")
    saved = json.loads((folder / "decisions.json").read_text())
    assert saved[ids[0]] == {"decision": "keep", "by": "person"}, "a person's decision gave way to a file"
    assert saved[ids[1]] == {"decision": "reject", "by": "filter"}, saved[ids[1]]
    assert saved[ids[2]] == {"decision": "keep", "by": "file picks.json"} and saved[ids[3]]["by"] == "file picks.json"
    kept = [json.loads(l)["id"] for l in (folder / "selected.jsonl").read_text().splitlines()]
    assert kept == [i for i in ids if saved[i]["decision"] == "keep"] == [ids[0], ids[2]], kept
    assert run["made"] == {"prompts": 0, "triplets": 0, "dice": 0, "judged": 0} and run["kept"] == 2, run
    assert run["decided_by"] == {"person": 1, "file picks.json": 2, "filter": len(ids) - 3}, run
    assert not [p.name for p in folder.iterdir() if p.name.endswith(".tmp")], "a temporary file of atomic_write was left behind"

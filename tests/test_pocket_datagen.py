"The data-generation experiment (nbs/56_pocket_datagen.ipynb) end to end on the shipped pocket models, in miniature, and its resume."
import copy, json, os
from pathlib import Path
import pytest
from dreamfuse_lit.core.files import data_path
from dreamfuse_lit.pocket.build import POCKET_PLAN
from dreamfuse_lit.pocket.datagen import datagen_experiment, install_datagen_results

def small_work(tmp_path) -> Path:
    "A pocket build's folder whose trained models are the shipped ones."
    work, shipped = tmp_path / "work", Path(data_path("pocket"))
    for stage, folder in (("base", "flux"), ("stage1", "stage1"), ("datagen-shared", "datagen-shared"), ("datagen-side", "datagen-side")):
        (work / stage).mkdir(parents=True)
        os.symlink(shipped / folder, work / stage / "final")
    return work

def small_plan() -> dict:
    plan = copy.deepcopy(POCKET_PLAN)
    plan["data"]["heldout"] = 2
    plan["stage1"] |= dict(steps=2, checkpoint_every=2, validate_every=100, log_every=1)
    plan["stage1"]["task"] |= dict(sample_steps=1, sample_count=1)
    return plan

def test_experiment_runs_and_resumes(tmp_path):
    work, plan = small_work(tmp_path), small_plan()
    run = lambda: datagen_experiment(work, n=4, seeds=2, seed_prompts=1, eval_items=2, steps=8, threshold=0., plan=plan, log=lambda *a: None)
    first = run()
    assert set(first["generators"]) == {"truth", "shared", "side"}
    assert [g["n"] for g in first["generators"].values()] == [4, 4, 4]
    assert first["prompts"] == ["heldout-0000002", "heldout-0000005"]  # after the evaluation's held-out items
    kept = first["loop"]["kept"]  # with no Dice cut: every triplet whose object was found
    assert kept == round(4 * first["generators"]["shared"]["segmented"]) >= 1
    assert [r["method"] for r in first["loop"]["table"]] == ["copy-paste", "stage 1, 4000 truths", f"stage 1, {kept} truths", f"stage 1, {kept} generated"]
    root = work / "datagen"
    assert len((root / "gen-shared" / "kept.jsonl").read_text().splitlines()) == kept
    assert json.loads((root / "results.json").read_text()) == first
    images = {p: p.stat().st_mtime_ns for p in root.glob("gen-*/images/*.png")}
    assert len(images) == 2 * 4 * 4
    second = run()  # everything is on disk: nothing is drawn again, and the results are the same
    assert second == first
    assert {p: p.stat().st_mtime_ns for p in root.glob("gen-*/images/*.png")} == images
    shipped = install_datagen_results(work, tmp_path / "pocket")
    assert shipped == tmp_path / "pocket" / "runs" / "datagen.json" and json.loads(shipped.read_text()) == first

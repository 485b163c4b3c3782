"Crash safety of `make_demo_triplets` (nbs/13_triplets.ipynb): an interrupted run keeps the previous set and leaves no temporary directory; a folder of other files is refused."
import re
import pytest
import dreamfuse_lit.world.triplets as triplets
from dreamfuse_lit.world.triplets import make_demo_triplets

def test_interrupted_run_keeps_previous_set(tmp_path, monkeypatch):
    before = make_demo_triplets(tmp_path / "demo", n=4, seed=1).read_text()
    real, calls = triplets.make_triplet, []
    def crashing(*args, **kw):
        calls.append(1)
        if len(calls) == 3: raise RuntimeError("simulated crash")
        return real(*args, **kw)
    monkeypatch.setattr(triplets, "make_triplet", crashing)
    with pytest.raises(RuntimeError, match="simulated crash"): make_demo_triplets(tmp_path / "demo", n=4, seed=2)
    assert len(calls) == 3
    assert (tmp_path / "demo" / "manifest.jsonl").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"]
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match=re.escape(f"out_dir {tmp_path} holds files")): make_demo_triplets(tmp_path)

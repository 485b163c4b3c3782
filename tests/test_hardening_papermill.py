"""The run notebooks run with papermill exactly as the README types it: no `-k`, no `--language`.

papermill takes the kernel from the notebook's `kernelspec.name` and the language that translates `-p` parameters from
`language_info.name`, else `kernelspec.language`. nbdev-clean keeps `kernelspec` but strips `language_info` (it is not in
its allowed notebook metadata), so a kernelspec with `name` and `language` is what every run notebook must carry.
"""
import json, os, re, subprocess, sys
from pathlib import Path
import papermill, pytest
from nbdev.clean import clean_nb
from nbdev.config import get_config

ROOT = Path(__file__).resolve().parents[1]
RUN_NOTEBOOKS = sorted([*ROOT.glob("nbs/train_*.ipynb"), *ROOT.glob("nbs/eval_*.ipynb"), ROOT / "nbs" / "datagen_round.ipynb"])
PAPERMILL = Path(sys.executable).with_name("papermill")

def test_there_are_run_notebooks(): assert len(RUN_NOTEBOOKS) >= 5, RUN_NOTEBOOKS

@pytest.mark.parametrize("nb", RUN_NOTEBOOKS, ids=lambda p: p.stem)
def test_run_notebook_names_kernel_and_language(nb, tmp_path):
    "The metadata names the python3 kernel and its language, nbdev-clean keeps both, and papermill resolves them with `-p`."
    nb_json = json.loads(nb.read_text())
    spec = nb_json["metadata"].get("kernelspec", {})
    assert (spec.get("name"), spec.get("language")) == ("python3", "python"), f"{nb.name}: kernelspec {spec!r}"
    cfg = get_config()
    clean_nb(nb_json, allowed_metadata_keys=cfg.get("allowed_metadata_keys") or [],
             allowed_cell_metadata_keys=cfg.get("allowed_cell_metadata_keys") or [])
    assert nb_json["metadata"]["kernelspec"] == spec, f"nbdev-clean changed {nb.name}'s kernelspec"
    # parameters are translated with the notebook's language and kernel: where a notebook without them fails with
    # "No kernel name found in notebook" (and, with -k, "No language found in notebook")
    out = papermill.execute_notebook(str(nb), str(tmp_path / nb.name), parameters={"seed": 1}, prepare_only=True, progress_bar=False)
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in out.cells)

def test_papermill_runs_a_run_notebook_as_typed(tmp_path):
    "The README's command, no -k: the fastest run notebook (stage 1 on the tiny model, one step) runs to its end."
    out, run = tmp_path / "train_dreamfuse.ipynb", tmp_path / "run"
    cmd = [str(PAPERMILL), "nbs/train_dreamfuse.ipynb", str(out), "-p", "steps", "1", "-p", "checkpoint_every", "1",
           "-p", "sample_steps", "1", "-p", "output_dir", str(run)]
    r = subprocess.run(cmd, cwd=ROOT, env=os.environ | {"HF_HUB_OFFLINE": "1"}, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (run / "final").is_dir() and any((run / "final").iterdir())
    executed = json.loads(out.read_text())
    assert not executed["metadata"]["papermill"]["exception"] and executed["metadata"]["kernelspec"]["name"] == "python3"

@pytest.mark.parametrize("nb", RUN_NOTEBOOKS, ids=lambda p: p.stem)
def test_papermill_reads_every_parameter(nb):
    "papermill parses each line of the `parameters` cell (an `=` in a comment defeats it, and `-p` then warns 'unknown parameter')."
    import nbformat
    from papermill.translators import PythonTranslator
    cell = next(c for c in nbformat.read(nb, as_version=4).cells if "parameters" in c.metadata.get("tags", []))
    assigned = [l.split("=")[0].strip() for l in cell.source.splitlines() if re.match(r"^\w+\s*(:\s*[^=]+)?=", l)]
    assert sorted(assigned) == sorted(p.name for p in PythonTranslator.inspect(cell)), nb.name

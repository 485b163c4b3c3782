"""Execute notebooks in place so that their stored outputs are fresh, and keep them light.

    python tools/run_notebooks.py nbs/21_dit.ipynb [more.ipynb ...]

Each notebook runs top to bottom in its own folder (as `nbdev-test` runs it), cells flagged `#| gpu` or `#| slow`
are skipped, and what would make the file heavy without telling a reader anything is dropped: widget state (tqdm's
notebook bars, an explorer's sliders) and the widget views that point at it. Run `nbdev-clean` afterwards.
"""
import os, re, sys, time
from pathlib import Path
import nbformat
from nbclient import NotebookClient

SKIP = re.compile(r"^\s*#\|\s*(gpu|slow|eval:\s*false)\s*$", re.MULTILINE)
WIDGET = "application/vnd.jupyter.widget-view+json"

def drop_widgets(nb):
    "Remove stored widget state and the outputs that only display a widget."
    nb.metadata.pop("widgets", None)
    for c in nb.cells:
        if c.cell_type != "code": continue
        c.outputs = [o for o in c.get("outputs", []) if WIDGET not in o.get("data", {})]
    return nb

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # as `make test` runs them: no hub, and the same hash seeds
os.environ.setdefault("PYTHONHASHSEED", "0")

def run(path, timeout=600):
    path = Path(path); nb = nbformat.read(path, as_version=4)
    skipped = [c for c in nb.cells if c.cell_type == "code" and SKIP.search(c.source)]
    for c in skipped: c.source, c.metadata["_skipped_source"] = "", c.source  # run nothing, restore below
    t = time.perf_counter()
    NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    for c in skipped: c.source = c.metadata.pop("_skipped_source"); c.outputs = []; c.execution_count = None
    nbformat.write(drop_widgets(nb), path)
    print(f"{path}: {time.perf_counter() - t:.0f} s, {path.stat().st_size // 1024} KB")

if __name__ == "__main__":
    for p in sys.argv[1:]: run(p)

"The course reads in order and stays light: what `nbs/` promises a reader, checked on the committed notebooks."
import json, re, subprocess, tomllib
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT / "nbs"
RUN_NOTEBOOKS = {"train_dreamfuse", "train_ldpo", "train_comfusion", "train_datagen", "eval_dreamfuse", "eval_comfusion", "datagen_round"}
IMPORT = re.compile(r"^\s*(?:from\s+(dreamfuse_lit(?:\.\w+)*)\s+import|import\s+(dreamfuse_lit(?:\.\w+)*))", re.M)

def notebooks(): return sorted(NBS.glob("*.ipynb"))
def cells(p): return json.loads(p.read_text())["cells"]
def source(c): return "".join(c["source"])

def lessons() -> dict:
    "Lesson file -> the module it exports, in reading (file-name) order."
    out = {}
    for p in notebooks():
        for c in cells(p):
            if m := re.match(r"#\|\s*default_exp\s+(\S+)", source(c)): out[p] = "dreamfuse_lit." + m[1]
    return out

def imports(p, exported_only:bool) -> set:
    "The dreamfuse_lit modules that notebook `p` imports, in its exported cells or in all its code cells."
    found = set()
    for c in cells(p):
        s = source(c)
        if c["cell_type"] != "code" or (exported_only and not re.match(r"#\|\s*export", s)): continue
        found |= {a or b for a, b in IMPORT.findall(s)}
    return found

def order_problems(exported_only:bool) -> list:
    "Imports that point to a module taught in a later notebook (or in no notebook)."
    taught = lessons(); where = {m: p for p, m in taught.items()}; rank = {p: i for i, p in enumerate(taught)}
    problems = []
    for p in taught:
        for mod in sorted(imports(p, exported_only)):
            if mod == "dreamfuse_lit": problems.append(f"{p.name} imports the top-level package; import from the module that teaches the name")
            elif mod not in where: problems.append(f"{p.name} imports {mod}, which no notebook exports")
            elif rank[where[mod]] > rank[p]: problems.append(f"{p.name} imports {mod}, taught later in {where[mod].name}")
    return problems

def test_exported_imports_point_back(): assert order_problems(exported_only=True) == []

def test_lessons_use_only_what_came_before(): assert order_problems(exported_only=False) == []

def test_lessons_are_short():
    long = {p.name: len(cells(p)) for p in lessons() if len(cells(p)) > 45}
    assert long == {}, f"lessons over 45 cells: {long}"

def test_notebooks_are_light():
    sizes = {p.name: p.stat().st_size for p in notebooks()}
    assert sum(sizes.values()) <= 2.5 * 2**20, f"nbs/ holds {sum(sizes.values()) / 2**20:.2f} MB of notebooks"
    assert {n: s // 1024 for n, s in sizes.items() if s > 300 * 1024} == {}

def test_no_widget_state():
    "Widget state (progress bars, sliders) is a snapshot of a dead kernel: it only makes the file heavy."
    stored = [p.name for p in notebooks() if "widgets" in json.loads(p.read_text()).get("metadata", {})
              or any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for c in cells(p) for o in c.get("outputs", []))]
    assert stored == []

@pytest.mark.parametrize("name", sorted(RUN_NOTEBOOKS))
def test_run_notebooks_keep_their_paths(name):
    p = NBS / f"{name}.ipynb"
    assert p.exists(), f"{p} is what `papermill` users run"
    assert sum("parameters" in c.get("metadata", {}).get("tags", []) for c in cells(p)) == 1

def test_links_point_to_lessons():
    "Links between lessons name notebooks that exist (a reader opens them in Jupyter or on GitHub, not as site pages)."
    names = {p.name for p in notebooks()}
    bad = [f"{p.name}: {m[1]}" for p in notebooks() for c in cells(p) if c["cell_type"] == "markdown"
           for m in re.finditer(r"\]\(([^)#\s]+\.(?:ipynb|html))", source(c))
           if not m[1].startswith("http") and (m[1].endswith(".html") or m[1] not in names)]
    assert bad == []

def test_every_module_has_its_lesson():
    "The package is what the notebooks export: no module without a notebook, no generated code outside the package."
    taught = {m for m in lessons().values()}
    pkg = ROOT / "dreamfuse_lit"
    modules = {".".join(p.relative_to(ROOT).with_suffix("").parts) for p in pkg.rglob("*.py")
               if p.name not in ("__init__.py", "_modidx.py") and "assets" not in p.parts}
    assert modules == taught, f"without a notebook: {sorted(modules - taught)}; not exported: {sorted(taught - modules)}"
    tracked = subprocess.run(["git", "ls-files", "*.py"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    stray = [f for f in tracked if f.split("/")[0] not in ("dreamfuse_lit", "tests", "bench", "tools", "data")]
    assert stray == []

def test_wheel_packages_are_the_subpackages():
    "pyproject lists every subpackage, so `pip install .` ships all of them."
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "dreamfuse_lit").rglob("__init__.py")}
    assert found <= listed, f"not in pyproject's packages: {sorted(found - listed)}"

def test_shipped_data_is_tracked():
    "A clean checkout has every file under data/: none of them is caught by a .gitignore rule."
    files = [str(p.relative_to(ROOT)) for p in (ROOT / "data").rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    ignored = subprocess.run(["git", "check-ignore", "--no-index", *files], cwd=ROOT, capture_output=True, text=True).stdout.split()
    assert ignored == [], f"ignored by .gitignore, so missing from a clean checkout: {ignored}"

"""Build the documentation site into _site/ from the notebooks' stored outputs; nothing is executed.

    python tools/docs.py [--out _site]

Each notebook in nbs/ becomes a Markdown page, as nbdev's docs would show it: `#| hide` cells are dropped,
`#| echo: false` cells show only their outputs, and every name an exported cell defines gets its signature and
docstring (nbdev's `show_doc`) right after that cell. The navigation follows the course's parts, read from the
file names, so a new notebook appears without editing mkdocs.yml; the syllabus is derived from the notebooks too.
mkdocs-material then builds the site, with MathJax served from the site itself. Run from the repository root.
"""
import argparse, functools, importlib, inspect, logging, re, shutil, time
from pathlib import Path
import jupyter_server_mathjax, nbformat
from jinja2 import DictLoader
from markdown.extensions.toc import slugify
from mkdocs.commands.build import build
from mkdocs.config import load_config
from nbconvert import MarkdownExporter
from nbdev.process import NBProcessor
from nbdev.processors import add_show_docs
from nbdev.showdoc import show_doc

ROOT = Path(__file__).resolve().parents[1]
NBS, DOCS = ROOT/"nbs", ROOT/"docs"
# the first digit of a lesson's file name -> its part of the course; notebooks without a number are the run notebooks
PARTS = {"0": "Core", "1": "World", "2": "DreamFuse", "3": "ComFusion", "4": "Data generation", "5": "Pocket models",
         "9": "Appendix"}
RUNS = "Run notebooks"
FLAGS = {"gpu": "needs a GPU", "slow": "takes a long time"}  # nbdev's tst_flags: `make test` skips these cells
IMPORT = re.compile(r"^\s*(?:from\s+(dreamfuse_lit(?:\.\w+)*)\s+import|import\s+(dreamfuse_lit(?:\.\w+)*))", re.M)
# every output in a bordered block, so a reader tells what a cell printed from what it says
TEMPLATE = """{% extends 'markdown/index.md.j2' %}
{% block output_group %}
<div class="output" markdown>
{{ super() }}
</div>
{% endblock output_group %}
"""

class Lesson:
    "One notebook: its cells, part, title, subtitle, module, the modules it imports and its `#| gpu` / `#| slow` cells."
    def __init__(self, path:Path):
        self.path, self.name = path, path.stem
        proc = NBProcessor(path, procs=[add_show_docs])  # a `show_doc(name)` cell after each exported definition,
        proc.process()                                    # directives parsed into `directives_` and cut from sources
        self.cells = cells = proc.nb.cells
        title = next((c.source for c in cells if c.cell_type == "markdown" and c.source.startswith("# ")), None)
        if title is None: raise ValueError(f"{path.name}: no '# Title' markdown cell")
        self.title = title.splitlines()[0][2:].strip()
        self.subtitle = next((l[1:].strip() for l in title.splitlines()[1:] if l.startswith(">")), "")
        self.module = next((c.directives_["default_exp"] for c in cells if "default_exp" in c.directives_), None)
        self.imports = {a or b for c in cells if c.cell_type == "code" for a, b in IMPORT.findall(c.source)}
        self.flagged = [(i, f, c.source) for i, c in enumerate(c for c in cells if c.cell_type == "code" and "has_sd" not in c)
                        for f in FLAGS if f in c.directives_]
        if path.stem == "index": self.part = None
        elif path.stem[0].isdigit():
            if path.stem[0] not in PARTS: raise ValueError(f"{path.name}: no part for lessons numbered {path.stem[0]}x; add it to PARTS in {__file__}")
            self.part = PARTS[path.stem[0]]
        else: self.part = RUNS

def lessons() -> list:
    "Every notebook in nbs/, in reading order (its file name)."
    return [Lesson(p) for p in sorted(NBS.glob("*.ipynb"))]

def api_names(ls) -> dict:
    "Each name documented by `show_doc` -> 'page.md#anchor', for linking `name` in the prose."
    return {c.source[9:-1]: f"{l.name}.md#{slugify(c.source[9:-1], '-')}" for l in ls for c in l.cells if "has_sd" in c}

def doc_card(module:str, name:str) -> str:
    "The signature and docstring of `name` from `dreamfuse_lit.{module}`, as nbdev's `show_doc` renders them."
    obj = eval(name, vars(importlib.import_module(f"dreamfuse_lit.{module}")))
    try: md = show_doc(obj)._repr_markdown_()
    except NameError as e:  # show_doc evaluates string annotations; one naming a later module's class cannot be
        logging.warning(f"dreamfuse_lit.{module}.{name}: show_doc failed ({e}); its signature is shown unevaluated")
        md = f"### {name}\n\n```python\n{name}{inspect.signature(obj)}\n```\n\n*{inspect.getdoc(obj) or ''}*"
    md = re.sub(r"^\[source\]\(.*\n", "", md, flags=re.M)  # a GitHub link without a line number: the source is just above
    return f'<div class="showdoc" markdown>\n\n{md}\n\n</div>'

def linkify(md:str, names:dict, page:str) -> str:
    "Point links to notebooks at their pages and `name` at its signature card, outside code blocks."
    parts = re.split(r"(^```.*?^```)", md, flags=re.M | re.S)
    for i in range(0, len(parts), 2):
        s = re.sub(r"\]\(([\w.-]+)\.ipynb", r"](\1.md", parts[i])
        s = re.sub(r"(?<!\[)`([\w.]+)(?:\(\))?`(?!\])",
                   lambda m: f"[{m[0]}]({names[m[1]].removeprefix(page)})" if m[1] in names else m[0], s)
        parts[i] = s
    return "".join(parts)

def page(lesson:Lesson, names:dict) -> tuple:
    "The lesson as Markdown, and its figures as {file name: bytes}."
    cells = []
    for c in lesson.cells:
        d = c.directives_
        if "has_sd" in c: cells.append(nbformat.v4.new_markdown_cell(doc_card(lesson.module, c.source[9:-1])))
        elif c.cell_type == "markdown": cells.append(nbformat.v4.new_markdown_cell(linkify(c.source, names, f"{lesson.name}.md")))
        elif "hide" in d or not (c.source or c.outputs): continue
        else:
            for f in FLAGS:
                if f in d: cells.append(nbformat.v4.new_markdown_cell(f'!!! note "This cell {FLAGS[f]} (`#| {f}`)"\n    `make test` skips it, so it has no stored output.'))
            code = nbformat.v4.new_code_cell(c.source, outputs=[nbformat.from_dict(o) for o in c.outputs])
            if d.get("echo") == "false": code.metadata["transient"] = {"remove_source": True}
            cells.append(code)
    nb = nbformat.v4.new_notebook(cells=cells, metadata={"language_info": {"name": "python"}})
    exporter = MarkdownExporter(extra_loaders=[DictLoader({"page.md.j2": TEMPLATE})], template_file="page.md.j2")
    body, res = exporter.from_notebook_node(nb, resources={"output_files_dir": f"{lesson.name}_files"})
    return body, res.get("outputs", {})

def link(name:str) -> str: return f"[{name}]({name}.md)"

def builds_on(ls) -> dict:
    """Lesson name -> the earlier lessons it builds on: those whose modules it imports or whose training task it runs
    (`method="sft"`, a name in `TASKS`), less those that another of them already builds on."""
    from dreamfuse_lit.core.training import TASKS
    taught = {f"dreamfuse_lit.{l.module}": l.name for l in ls if l.module}
    direct = {}
    for l in ls:
        tasks = {TASKS[m].split(":")[0] for c in l.cells if c.cell_type == "code"
                 for m in re.findall(r"method\s*=\s*[\"'](\w+)[\"']", c.source) if m in TASKS}
        direct[l.name] = {taught[m] for m in l.imports | tasks if m in taught} - {l.name}
    @functools.cache
    def closure(n): return frozenset().union(*({d} | closure(d) for d in direct[n]))
    return {n: sorted(d for d in ds if not any(d in closure(e) for e in ds - {d})) for n, ds in direct.items()}

def laptop_order(ls, needs:dict) -> list:
    "The lessons in file order, each run notebook right after the last lesson it builds on."
    order = [l for l in ls if l.part not in (None, RUNS)]
    for r in (l for l in ls if l.part == RUNS):
        at = [i for i, l in enumerate(order) if l.name in needs[r.name]]
        order.insert(max(at, default=len(order) - 1) + 1, r)
    return order

def syllabus(ls) -> str:
    "docs/syllabus.md, then per part what each lesson teaches, what it builds on and its flagged cells, then the running order."
    needs = builds_on(ls)
    out = [(DOCS/"syllabus.md").read_text().rstrip()]
    for part in [*PARTS.values(), RUNS]:
        rows = [l for l in ls if l.part == part]
        if not rows: continue
        out += [f"\n## {part}\n", "| Lesson | What it teaches | Builds on | Cells that need a GPU or a long time |", "|---|---|---|---|"]
        for l in rows:
            flagged = "<br>".join(f"code cell {i + 1} ({f}): `{src.strip().splitlines()[0][:60]}`" for i, f, src in l.flagged)
            row = [f"{link(l.name)}: **{l.title}**", l.subtitle, ", ".join(map(link, needs[l.name])) or "-", flagged or "-"]
            out.append("| " + " | ".join(c.replace("|", "\\|") for c in row) + " |")
    out += ["\n## The order to run them on a laptop\n",
            "File order, with each run notebook right after the last lesson it builds on:\n"]
    out += [f"{i}. {link(l.name)} {l.title}{' (run notebook)' if l.part == RUNS else ''}" for i, l in enumerate(laptop_order(ls, needs), 1)]
    return "\n".join(out) + "\n"

def nav(ls) -> list:
    "Home, the syllabus, then one section per part."
    parts = {}
    for l in ls:
        if l.part: parts.setdefault(l.part, []).append({l.title: f"{l.name}.md"})
    return [{"Home": "index.md"}, {"Syllabus": "syllabus.md"}, *({p: parts[p]} for p in [*PARTS.values(), RUNS] if p in parts)]

def build_site(out="_site", src="_proc/site") -> Path:
    "Write the pages into `src`, then build the site into `out`; returns `out`."
    src, out = ROOT/src, ROOT/out
    shutil.rmtree(src, ignore_errors=True)
    (src/"assets").mkdir(parents=True)
    ls = lessons(); names = api_names(ls)
    for l in ls:
        body, files = page(l, names)
        (src/f"{l.name}.md").write_text(body)
        for f, data in files.items(): (src/f).parent.mkdir(exist_ok=True); (src/f).write_bytes(data)
    (src/"syllabus.md").write_text(syllabus(ls))
    for f in ("extra.css", "mathjax-config.js"): shutil.copy(DOCS/f, src/"assets"/f)
    shutil.copytree(Path(jupyter_server_mathjax.__file__).parent/"static", src/"assets"/"mathjax")
    build(load_config(str(ROOT/"mkdocs.yml"), docs_dir=str(src), site_dir=str(out), nav=nav(ls)))
    return out

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="_site", help="the site's folder, relative to the repository root")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")  # mkdocs' progress and warnings
    t = time.perf_counter(); out = build_site(ap.parse_args().out)
    print(f"{out}: built in {time.perf_counter() - t:.0f} s; serve it with: python -m http.server -d {out}")

"""Write README.md from nbs/index.ipynb, as `nbdev-readme` would without needing Quarto.

Cells with a `#| hide` directive are dropped, cells with `#| echo: false` show only their outputs,
other directive lines are stripped, and the saved outputs (figures included, written to README_files/)
are kept. Run from the repository root.
"""
import re, shutil
from pathlib import Path
import nbformat
from nbconvert import MarkdownExporter

_directive = re.compile(r"^\s*#\|.*$\n?", re.MULTILINE)

def main(src="nbs/index.ipynb", out="README.md"):
    nb = nbformat.read(src, as_version=4)
    nb.cells = [c for c in nb.cells if not re.search(r"^\s*#\|\s*hide\s*$", c.source, re.MULTILINE)]
    for c in nb.cells:
        if c.cell_type != "code": continue
        if re.search(r"^\s*#\|\s*echo:\s*false\s*$", c.source, re.MULTILINE): c.metadata["transient"] = {"remove_source": True}
        c.source = _directive.sub("", c.source)
    body, res = MarkdownExporter().from_notebook_node(nb, resources={"output_files_dir": "README_files"})
    files = Path(out).with_suffix("").name + "_files"
    shutil.rmtree(files, ignore_errors=True)
    for name, data in res.get("outputs", {}).items():
        Path(name).parent.mkdir(parents=True, exist_ok=True)
        Path(name).write_bytes(data)
    note = "<!-- generated from nbs/index.ipynb by tools/readme.py (make readme): edit the notebook -->\n\n"
    Path(out).write_text(note + body.strip() + "\n")

if __name__ == "__main__": main()

"""The documentation site as a reader sees it: `tools/docs.py` builds it from the committed notebooks, and headless
Chromium (Debian's package; `.ci/run` installs it) opens the index, the syllabus, one lesson per part and one run
notebook. Each page must load without a console error or a request that leaves the site, show every figure at a
non-zero size, typeset its math and carry its lesson's signature cards. A screenshot of each page, and of its first
figure, is saved under the test's temporary folder."""
import functools, os, shutil, sys, threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import docs

def n_figures(lesson) -> int:
    "Image outputs of the cells a page shows."
    return sum(any(k.startswith("image/") for k in o.get("data", {})) for c in lesson.cells
               if c.cell_type == "code" and "hide" not in c.directives_ for o in c.get("outputs", []))

def pages() -> dict:
    "Page name -> its lesson (None for the syllabus): the index, the syllabus, and per part its lesson with the most figures."
    ls = docs.lessons()
    best = {}
    for l in ls:
        if l.part not in best or n_figures(l) > n_figures(best[l.part]): best[l.part] = l
    return {"index": best.pop(None), "syllabus": None, **{l.name: l for l in best.values()}}

PAGES = pages()

class Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args): pass

@pytest.fixture(scope="module")
def site(tmp_path_factory):
    "The site, built into a temporary folder and served on a loopback port; yields its base URL and folder."
    tmp = tmp_path_factory.mktemp("docs")
    out = docs.build_site(out=tmp / "site", src=tmp / "src")
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(out)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/", out
    server.shutdown()

@pytest.fixture(scope="module")
def browser():
    exe = shutil.which("chromium")
    if exe is None:  # CI must run this test: .ci/run installs the package
        (pytest.fail if os.environ.get("CI") else pytest.skip)("no chromium on PATH: apt-get install chromium")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe)
        yield b
        b.close()

def open_page(browser, url:str, base:str):
    "Open `url` and wait for its math; returns the page and what went wrong while loading (console errors, failed or outside requests)."
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems = []
    page.on("console", lambda m: m.type == "error" and problems.append(f"console: {m.text}"))
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"failed: {r.url}"))
    page.on("request", lambda r: r.url.startswith((base, "data:")) or problems.append(f"outside the site: {r.url}"))
    page.goto(url, wait_until="networkidle")
    page.wait_for_function("() => window.MathJax && MathJax.isReady")
    page.evaluate("() => new Promise(done => MathJax.Hub.Queue(done))")  # after the page's typesetting
    return page, problems

@pytest.mark.parametrize("name", list(PAGES))
def test_page(site, browser, tmp_path, name):
    base, out = site
    page, problems = open_page(browser, f"{base}{name}.html", base)
    assert problems == [], problems
    article = page.locator("article")
    figures = article.locator("img")
    lesson = PAGES[name]
    n = n_figures(lesson) if lesson else 0
    assert figures.count() == n  # every image output the page has, shown
    sizes = figures.evaluate_all("imgs => imgs.map(i => [i.naturalWidth, i.getBoundingClientRect().width, i.getBoundingClientRect().height])")
    assert all(min(s) > 0 for s in sizes), sizes
    math = article.locator(".arithmatex")
    assert math.count() == article.locator(".arithmatex .MathJax").count()  # each formula typeset ...
    assert article.locator(".noError, merror").count() == 0  # ... without a TeX error
    if lesson is not None and lesson.module:
        assert article.locator(".showdoc").count() == sum("has_sd" in c for c in lesson.cells) > 0
    if name in ("index", "syllabus"): assert article.locator("table").count() > 0
    page.screenshot(path=tmp_path / f"{name}.png")
    if n: figures.first.screenshot(path=tmp_path / f"{name}-figure.png")
    page.close()

def test_math_and_search(site, browser, tmp_path):
    "A page with formulas typesets them, and the search box finds an exported name on its lesson's page."
    base, out = site
    lesson = next(l for l in docs.lessons() if "$$" in "".join(c.source for c in l.cells if c.cell_type == "markdown")
                  and any("has_sd" in c for c in l.cells))
    page, problems = open_page(browser, f"{base}{lesson.name}.html", base)
    assert problems == [] and page.locator("article .arithmatex .MathJax").count() > 0
    name = next(c.source[9:-1] for c in lesson.cells if "has_sd" in c)
    box = page.locator("input.md-search__input")
    box.click()
    page.wait_for_function("() => !document.querySelector('.md-search-result__meta').textContent.includes('Initializing')")
    box.press_sequentially(name, delay=20)  # keystrokes, as a reader types: a filled-in value can go unseen
    hit = page.locator(f".md-search-result__item a[href*='{lesson.name}.html']").first
    hit.wait_for(timeout=20_000)
    page.screenshot(path=tmp_path / "search.png")
    assert problems == []
    page.close()

def test_syllabus():
    "The syllabus is derived from the notebooks: each lesson once, after all it builds on, and every flagged cell listed."
    ls = docs.lessons()
    needs = docs.builds_on(ls)
    order = [l.name for l in docs.laptop_order(ls, needs)]
    assert sorted(order) == sorted(l.name for l in ls if l.part)
    assert [(d, n) for n in order for d in needs[n] if order.index(d) > order.index(n)] == []
    ancestors = lambda n: set(needs[n]).union(*(ancestors(d) for d in needs[n]))
    assert "28b_ldpo_task" in ancestors("train_ldpo")  # the task it trains, named only by `method="ldpo"`
    text = docs.syllabus(ls)
    assert any(l.flagged for l in ls) and all(f"code cell {i + 1} ({f})" in text for l in ls for i, f, _ in l.flagged)

"""The lessons' exercises, checked without running a notebook: each check cell's `@exercise` functions are read from
its lesson and defined next to the lesson's imports and its module's names; every check must pass with the
reference answer in tests/exercise_solutions/<lesson>.py (`x` for `check_x`), fail with its typical mistake
(`x_wrong`), and say "not attempted yet" for `None`. The committed lessons keep their answer cells unanswered."""
import ast, functools, importlib.util, json, re
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
NBS, SOLUTIONS = ROOT / "nbs", Path(__file__).parent / "exercise_solutions"
LESSONS = ["20_positions", "20b_rope", "21_dit", "22_conditions", "23_flow", "23b_released", "24_pipeline", "25_dataset",
           "25b_latents", "26_border_dice", "26b_filtering", "26c_reports", "27_sft", "28_ldpo", "28b_ldpo_task",
           "30_losses", "31_priors", "32_task"]

def is_check(node) -> bool:
    return isinstance(node, ast.FunctionDef) and any(getattr(d, "id", None) == "exercise" for d in node.decorator_list)

def code_cells(lesson:str) -> list:
    "The parsed code cells of `nbs/{lesson}.ipynb`, with their stored outputs."
    out = []
    for c in json.loads((NBS / f"{lesson}.ipynb").read_text())["cells"]:
        if c["cell_type"] != "code": continue
        try: out.append((ast.parse("".join(c["source"])), c.get("outputs", [])))
        except SyntaxError: pass  # a cell with IPython magics holds no check
    return out

@functools.cache
def checks(lesson:str) -> dict:
    "Name -> check function, defined from the lesson's imports, its module's names and its `@exercise` definitions."
    cells = code_cells(lesson)
    module = re.search(r"#\|\s*default_exp\s+([\w.]+)", (NBS / f"{lesson}.ipynb").read_text())[1]
    ns = {}
    exec(f"from dreamfuse_lit.{module} import *", ns)
    imports = [n for tree, _ in cells for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    exec(compile(ast.Module(imports, []), lesson, "exec"), ns)
    defs = [n for tree, _ in cells for n in tree.body if is_check(n)]
    exec(compile(ast.Module(defs, []), lesson, "exec"), ns)
    return {n.name: ns[n.name] for n in defs}

@functools.cache
def solutions(lesson:str):
    spec = importlib.util.spec_from_file_location(f"solutions_{lesson}", SOLUTIONS / f"{lesson}.py")
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    return mod

def check_names(lesson:str) -> list:
    "The names of the lesson's `@exercise` checks, read without running anything."
    return [n.name for tree, _ in code_cells(lesson) for n in tree.body if is_check(n)]

CASES = [(l, n) for l in LESSONS for n in check_names(l)]

@pytest.mark.parametrize("lesson", LESSONS)
def test_each_lesson_has_exercises(lesson):
    "One or two exercises, each with a reference answer, and the committed lesson shows each one unanswered."
    found = [(n, outs) for tree, outs in code_cells(lesson) for n in tree.body if is_check(n)]
    assert 1 <= len(found) <= 2, f"{lesson}: {len(found)} exercises"
    sol = solutions(lesson)
    for n, outs in found:
        name = n.name.removeprefix("check_")
        assert hasattr(sol, name) and hasattr(sol, f"{name}_wrong"), f"{lesson}: no `{name}` and `{name}_wrong` in {SOLUTIONS.name}/{lesson}.py"
        shown = "".join("".join(o.get("data", {}).get("text/markdown", "")) for o in outs)
        assert "not attempted yet" in shown, f"{lesson}: {n.name}'s stored output is not 'not attempted yet': the answer cell must stay unanswered"

@pytest.mark.parametrize("lesson,name", CASES)
def test_reference_answer_passes(lesson, name):
    check, sol = checks(lesson)[name], solutions(lesson)
    assert "**correct**" in check(getattr(sol, name.removeprefix("check_"))).data
    assert "not attempted yet" in check(None).data

@pytest.mark.parametrize("lesson,name", CASES)
def test_typical_mistake_fails(lesson, name):
    check, sol = checks(lesson)[name], solutions(lesson)
    with pytest.raises(AssertionError, match=f"^{name}: "): check(getattr(sol, name.removeprefix("check_") + "_wrong"))

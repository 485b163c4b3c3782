"Generation at scale: two processes write the same files as one, and a crashed run resumes where it stopped."
import json, os, subprocess, sys
from pathlib import Path
import pytest
from dreamfuse_lit.core.files import data_path
from dreamfuse_lit.datagen import generate as gen
from dreamfuse_lit.datagen.generate import generate_triplets, item_files, item_id
from dreamfuse_lit.datagen.pipeline import DataGenPipeline

SMALL = dict(height=32, width=48, num_inference_steps=2, max_sequence_length=16)
ARGS = ["--height", "32", "--width", "48", "--steps", "2", "--max-sequence-length", "16"]

def prompt_rows(n=5):
    rows = [json.loads(l) for l in data_path("demo", "manifest.jsonl").read_text().splitlines()[:n]]
    return [dict(id=i, foreground=r["foreground_prompt"], background=r["background_prompt"], fused=r["prompt"]) for i, r in enumerate(rows)]

def files(out:Path) -> dict:
    "Every file of a run but settings and temporary files, by relative path: its bytes."
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file() and not p.name.startswith(".")}

def run(cmd, env):
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]

def test_two_processes_write_the_files_one_does(tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps(r) + "\n" for r in prompt_rows()))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
    cli = ["-m", "dreamfuse_lit.datagen.generate", "--prompts", str(prompts), *ARGS]
    run([sys.executable, *cli, "--out", str(tmp_path / "one")], env)
    run([sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
         "--dynamo_backend", "no", "--multi_gpu", *cli, "--out", str(tmp_path / "two")], env)
    one, two = files(tmp_path / "one"), files(tmp_path / "two")
    assert len(one) == 5 * 5 + 2  # four images and a row per item, settings.json, manifest.jsonl
    assert one.keys() == two.keys() and all(one[k] == two[k] for k in one), [k for k in one if one[k] != two.get(k)]

def test_a_crashed_run_resumes_losing_at_most_the_item_in_flight(tmp_path):
    pipe, calls = DataGenPipeline.from_pretrained("tiny"), []
    real = gen.generate_item
    def crash_on_third(pipe, row, out, settings):
        calls.append(row["id"])
        if len(calls) == 3:  # a crash while the third item is being written: its first image is on disk, its row is not
            item = item_files(out, item_id(row)); item["foreground"].parent.mkdir(parents=True, exist_ok=True)
            item["foreground"].write_bytes(b"half")
            raise KeyboardInterrupt
        return real(pipe, row, out, settings)
    out = tmp_path / "gen"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(gen, "generate_item", crash_on_third)
        with pytest.raises(KeyboardInterrupt): generate_triplets(prompt_rows(), out, pipe=pipe, progress=False, **SMALL)
    assert not (out / "manifest.jsonl").exists()
    assert sorted(p.name for p in (out / "rows").iterdir()) == ["gen-000000.json", "gen-000001.json"]
    calls.clear()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(gen, "generate_item", lambda *a, **k: (calls.append(a[1]["id"]), real(*a, **k))[1])
        generate_triplets(prompt_rows(), out, pipe=pipe, progress=False, **SMALL)
    assert calls == [2, 3, 4]  # only what was not finished
    clean = tmp_path / "clean"
    generate_triplets(prompt_rows(), clean, pipe=pipe, progress=False, **SMALL)
    assert files(out) == files(clean)

def test_a_run_from_before_guidance_resumes_without_it(tmp_path):
    "A folder whose settings.json predates `true_cfg_scale` was drawn without guidance: it resumes at scale 1 and refuses another."
    pipe, out = DataGenPipeline.from_pretrained("tiny"), tmp_path / "run"
    generate_triplets(prompt_rows(2), out, pipe=pipe, progress=False, **SMALL)
    old = json.loads((out / "settings.json").read_text()); del old["true_cfg_scale"]
    (out / "settings.json").write_text(json.dumps(old))
    generate_triplets(prompt_rows(3), out, pipe=pipe, progress=False, **SMALL)
    assert len((out / "manifest.jsonl").read_text().splitlines()) == 3
    with pytest.raises(ValueError, match="true_cfg_scale"):
        generate_triplets(prompt_rows(3), out, pipe=pipe, progress=False, true_cfg_scale=4., **SMALL)

"What the zoo lesson promises but can't show well: builders (threads, processes) racing for one directory, and a build that fails."
import os, subprocess, sys, threading, time
from concurrent.futures import ThreadPoolExecutor
import pytest
from transformers import ViTConfig, ViTModel
from dreamfuse_lit.core.zoo import CACHE_ENV, build_once, tiny_dir


def test_build_once_race(tmp_path):
    "Two threads build the same directory at the same moment: both get it, it holds one complete build, no temporary is left."
    race, start, results = tmp_path / "model", threading.Barrier(2), {}
    def slow_build(d, name):  # a real (tiny DINO) model and the builder's name, then linger so that both threads build
        ViTModel(ViTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=4), add_pooling_layer=False).save_pretrained(d)
        (d / "built_by.txt").write_text(name)
        time.sleep(0.3)
    def racer(name): start.wait(); results[name] = build_once(race, lambda d: slow_build(d, name))
    threads = [threading.Thread(target=racer, args=(n,)) for n in ("a", "b")]
    for t in threads: t.start()
    for t in threads: t.join()
    assert results["a"] == results["b"] == race
    assert os.listdir(tmp_path) == ["model"]
    assert (race / "built_by.txt").read_text() in ("a", "b")
    assert ViTModel.from_pretrained(race, add_pooling_layer=False).config.hidden_size == 32


def test_failed_build_leaves_nothing(tmp_path):
    "A build that fails raises its own error and leaves nothing under the final name, nor its temporary directory."
    def broken(d): (d / "half.bin").write_bytes(b"0"); raise RuntimeError("out of memory")
    with pytest.raises(RuntimeError, match="out of memory"): build_once(tmp_path / "other", broken)
    assert os.listdir(tmp_path) == []


def test_threads_share_one_tiny_build(tmp_path, monkeypatch):
    "Four threads asking for a family on an empty cache all get the one directory that the first of them builds."
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    with ThreadPoolExecutor(4) as ex: got = list(ex.map(tiny_dir, ["dino"] * 4))
    assert len(set(got)) == 1 and got[0].parent == tmp_path and got[0].name.startswith("tiny-dino-")
    assert os.listdir(tmp_path) == [got[0].name]
    assert sorted(p.name for p in got[0].iterdir()) == ["config.json", "model.safetensors", "preprocessor_config.json"]

CODE = """
from dreamfuse_lit.core.zoo import tiny_dir, load_clip
d = tiny_dir('clip')
model, processor = load_clip('tiny')
print(d, sum(p.numel() for p in model.parameters()))
"""

def test_concurrent_tiny_builds_agree(tmp_path):
    env = {**os.environ, "DREAMFUSE_LIT_CACHE": str(tmp_path), "HF_HUB_OFFLINE": "1"}
    procs = [subprocess.Popen([sys.executable, "-c", CODE], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err
    results = {out.strip() for out, _ in outs}
    assert len(results) == 1, results  # same directory, same model
    entries = sorted(p.name for p in tmp_path.iterdir())
    assert len(entries) == 1 and entries[0].startswith("tiny-clip-"), f"expected one finished build, found {entries}"

"""Issue 15, the training engine under bad inputs and faults: damaged checkpoints, two runs on one folder, bad config
values, late errors in a launched run, a moved run folder; and the same class of fault in the ComFusion priors folder.

The runs train `ToyTask` (a linear layer) in this process, so each takes a second; only the lock tests start
subprocesses, because a lock is only worth something between processes."""
import dataclasses, json, os, shutil, subprocess, sys, time
from pathlib import Path
import pytest, torch
from safetensors.torch import load_file
from dreamfuse_lit.core.files import LOCK_FILE, folder_lock
from dreamfuse_lit.core.training import (TrainConfig, _check_resume, checkpoint_problem, get_task, launch, load_config, read_metrics,
                                         save_config, train, train_cli)

TOY = "dreamfuse_lit.core.toy_task:ToyTask"


def toy(out, **kw) -> TrainConfig:
    return TrainConfig(method=TOY, output_dir=str(out), lr=.1, batch_size=8, report_to="none",
                       **{"lr_scheduler": "constant_with_warmup", "warmup_steps": 2, **kw})


def names(run) -> list[str]: return sorted(p.name for p in (Path(run) / "checkpoints").glob("checkpoint-*"))


def damage(ckpt: Path):
    f = ckpt / "trainable.safetensors"; b = bytearray(f.read_bytes()); b[-1] ^= 1; f.write_bytes(bytes(b))


def snapshot(run) -> dict: return {p: p.read_bytes() for p in sorted((Path(run) / "checkpoints").rglob("*")) if p.is_file()}


# 1. all checkpoints damaged: no silent restart from 0, and rotation never deletes the sound ones

def test_all_checkpoints_damaged_refuses_to_restart(tmp_path):
    run = tmp_path / "run"
    train(toy(run, steps=6, checkpoint_every=3))
    for c in names(run): damage(run / "checkpoints" / c)
    before = snapshot(run)
    with pytest.raises(FileExistsError) as e: train(toy(run, steps=9, checkpoint_every=3))
    msg = str(e.value)
    assert "none can be loaded" in msg and str(run) in msg, msg
    for c in ("checkpoint-000003", "checkpoint-000006"): assert f"{c}: trainable.safetensors does not match" in msg, msg
    assert snapshot(run) == before  # nothing deleted, nothing overwritten


def test_rotation_keeps_sound_checkpoints_at_or_below_the_step(tmp_path):
    "Resuming from an older checkpoint: damaged or later checkpoints are neither counted nor deleted."
    run = tmp_path / "run"
    train(toy(run, steps=9, checkpoint_every=3, keep_checkpoints=3))
    for c in ("checkpoint-000006", "checkpoint-000009"): damage(run / "checkpoints" / c)
    train(toy(run, steps=7, checkpoint_every=7, keep_checkpoints=2, resume=str(run / "checkpoints" / "checkpoint-000003")))
    assert names(run) == ["checkpoint-000003", "checkpoint-000006", "checkpoint-000007", "checkpoint-000009"]
    assert checkpoint_problem(run / "checkpoints" / "checkpoint-000003") is None
    assert checkpoint_problem(run / "checkpoints" / "checkpoint-000007") is None


def test_steps_beyond_the_target_are_refused(tmp_path):
    run = tmp_path / "run"
    train(toy(run, steps=6, checkpoint_every=3))
    with pytest.raises(ValueError, match=r"steps=4 .*step 6"): train(toy(run, steps=4, checkpoint_every=3))


# 5 and 6. config values: checked, coerced, named

@pytest.mark.parametrize("steps", [0, -3])
def test_steps_must_be_positive(tmp_path, steps):
    with pytest.raises(ValueError, match=f"steps={steps}"): toy(tmp_path / "run", steps=steps)
    p = save_config(toy(tmp_path / "run", steps=5), tmp_path / "cfg.yaml")
    with pytest.raises(ValueError, match=f"{p}: steps={steps}"): train_cli(["--config", str(p), "--steps", str(steps)])
    assert not (tmp_path / "run").exists()


def test_config_types_are_checked_and_coerced(tmp_path):
    p = tmp_path / "cfg.yaml"
    # YAML 1.1 reads 1e-4 (no dot) as a string and an unquoted `no` as false
    p.write_text(f"method: {TOY}\nlr: 1e-4\nsteps: '12'\nwarmup_steps: 1e1\nmixed_precision: no\nresume: null\n"
                 "gradient_checkpointing: 'false'\nmax_grad_norm: 1\ntask:\n")
    cfg = load_config(p)
    assert (cfg.lr, cfg.steps, cfg.warmup_steps, cfg.mixed_precision, cfg.resume, cfg.gradient_checkpointing, cfg.task) == \
           (1e-4, 12, 10, "no", None, False, {})
    assert type(cfg.lr) is float and type(cfg.steps) is int and type(cfg.max_grad_norm) is float
    bad = {"lr: abc": "lr='abc'", "lr: -1.0": "lr=-1.0", "lr: .nan": "lr=nan", "steps: 2.5": "steps=2.5",
           "batch_size: true": "batch_size=True", "gradient_checkpointing: maybe": "gradient_checkpointing='maybe'",
           "optimizer: sgd": "optimizer='sgd'", "mixed_precision: fp8": "mixed_precision='fp8'",
           "lr_scheduler: cosin": "lr_scheduler='cosin'", "report_to: tensorbord": "report_to='tensorbord'",
           "task: [1, 2]": "task=[1, 2]", "output_dir: ''": "output_dir=''", "pretrained: 7": "pretrained=7",
           "seed: -1": "seed=-1", "seed: 4294967296": "seed=4294967296", "keep_checkpoints: 0": "keep_checkpoints=0"}
    for line, named in bad.items():
        p.write_text(line + "\n")
        with pytest.raises(ValueError) as e: load_config(p)
        assert str(e.value).startswith(f"{p}: {named}"), (line, str(e.value))
    with pytest.raises(ValueError, match="lr='1e-4x'"): TrainConfig(lr="1e-4x")


def test_task_arguments_are_coerced_and_named(tmp_path):
    "A task's dataclass fields get the same treatment as the config's, named `task.<key>`, before anything is launched."
    p = tmp_path / "cfg.yaml"
    p.write_text("method: ldpo\ntask:\n  beta: 5e3\n  sample_scale: '64'\n  lora_alpha: null\n")
    task = get_task(load_config(p))
    assert (task.beta, task.sample_scale, task.lora_alpha) == (5000.0, 64, None) and type(task.beta) is float
    p.write_text("method: ldpo\ntask:\n  beta: lots\n")
    with pytest.raises(ValueError, match=f"{p}: task.beta='lots' must be a number"): launch(p, log=lambda l: None)
    p.write_text("method: dreamfuse_lit.core.toy_task:NoSuchTask\n")
    with pytest.raises(ValueError, match=f"{p}: method='dreamfuse_lit.core.toy_task:NoSuchTask' can't be imported"): launch(p, log=lambda l: None)


# 14. a moved run folder resumes

def test_moved_run_folder_resumes(tmp_path):
    straight = load_file(train(toy(tmp_path / "straight", steps=9, checkpoint_every=3)) / "toy.safetensors")
    train(toy(tmp_path / "here", steps=5, checkpoint_every=3))
    shutil.move(tmp_path / "here", tmp_path / "there")
    moved = load_file(train(toy(tmp_path / "there", steps=9, checkpoint_every=3)) / "toy.safetensors")
    for k in straight: assert torch.equal(straight[k], moved[k]), k
    assert [r["loss"] for r in read_metrics(tmp_path / "straight")] == [r["loss"] for r in read_metrics(tmp_path / "there")]


def test_paths_inside_the_run_folder_move_with_it(tmp_path):
    "A task argument inside the run folder (LDPO's stage-1 LoRA in output_dir/stage1) moves with it; one outside does not."
    a, b = tmp_path / "a", tmp_path / "b"
    old = toy(a, steps=3, task={"ref": str(a / "stage1" / "final"), "other": str(tmp_path / "x")})
    ckpt = tmp_path / "ckpt"; ckpt.mkdir()
    (ckpt / "checkpoint.json").write_text(json.dumps({"step": 3, "config": dataclasses.asdict(old)}))
    _check_resume(ckpt, toy(b, steps=5, task={"ref": str(b / "stage1" / "final"), "other": str(tmp_path / "x")}))
    with pytest.raises(ValueError, match=r"\['task'\]"):
        _check_resume(ckpt, toy(b, steps=5, task={"ref": str(b / "stage1" / "final"), "other": str(tmp_path / "y")}))


# 8. errors arrive before anything is built, and lead with their cause

def test_missing_data_is_refused_before_anything(tmp_path):
    run = tmp_path / "run"
    with pytest.raises(FileNotFoundError, match=f"data={str(tmp_path / 'nope.jsonl')!r}"): train(toy(run, steps=3, data=str(tmp_path / "nope.jsonl")))
    assert not run.exists()
    with pytest.raises(ValueError, match="pretrained='/no/such/model'"): train(toy(run, steps=3, pretrained="/no/such/model"))
    config = save_config(toy(run, steps=3, data=str(tmp_path / "nope.jsonl")), tmp_path / "cfg.yaml")
    lines, t0 = [], time.time()
    with pytest.raises(FileNotFoundError, match=str(config)): launch(config, log=lines.append)  # in this process: nothing launched
    assert lines == [] and time.time() - t0 < 10 and not run.exists()


def test_offline_unknown_model_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ValueError, match="pretrained='nobody/no-such-model'.*not in the local hub cache"):
        train(toy(tmp_path / "run", steps=3, pretrained="nobody/no-such-model"))


# 2. one run per folder: an OS lock held for the run's life, released by the kernel when the process dies

HOLD = """import sys, time
from dreamfuse_lit.core.files import folder_lock
with folder_lock(sys.argv[1], "training run"):
    print("held", flush=True); time.sleep(600)
"""


def test_second_run_on_a_folder_is_refused(tmp_path):
    "While a process holds the run folder, `launch` on it is refused on one and on two processes, cause first; after kill -9 it goes ahead."
    run = tmp_path / "run"
    holder_proc = subprocess.Popen([sys.executable, "-c", HOLD, str(run)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder_proc.stdout.readline() == "held\n"
        holder = (run / LOCK_FILE).read_text()
        assert holder.startswith(f"pid {holder_proc.pid} on "), holder
        config = save_config(toy(run, steps=5, checkpoint_every=5), tmp_path / "cfg.yaml")
        for n in (1, 2):  # on two processes, rank 0 asks for the lock and every rank stops
            with pytest.raises(RuntimeError) as e: launch(config, num_processes=n, log=lambda l: None, env={"OMP_NUM_THREADS": "1"})
            first_line = str(e.value).splitlines()[0]
            assert first_line.startswith(f"RuntimeError: {run} is in use by another training run: pid {holder_proc.pid} on "), str(e.value)[-3000:]
        assert sorted(p.name for p in run.iterdir()) == [LOCK_FILE]  # the refused runs wrote nothing
    finally:
        holder_proc.kill(); holder_proc.wait()
    # kill -9 left the lock file behind, but the kernel released the lock: the next run goes ahead, and lets go at its end
    assert (run / LOCK_FILE).exists()
    train(toy(run, steps=5, checkpoint_every=5))
    assert names(run) == ["checkpoint-000005"] and not (run / LOCK_FILE).exists()


HOLD_AND_FORK = """import os, sys, time
from dreamfuse_lit.core.files import folder_lock
with folder_lock(sys.argv[1], "training run"):
    if (child := os.fork()) == 0: time.sleep(600); os._exit(0)
    print(child, flush=True); time.sleep(600)
"""


def test_kill_9_frees_the_lock_while_forked_workers_live(tmp_path):
    "A DataLoader worker forked while the lock is held doesn't keep it: killing the run frees the folder at once."
    proc = subprocess.Popen([sys.executable, "-c", HOLD_AND_FORK, str(tmp_path / "run")], stdout=subprocess.PIPE, text=True)
    child = int(proc.stdout.readline())
    try:
        with pytest.raises(RuntimeError, match="in use"):
            with folder_lock(tmp_path / "run"): pass
        proc.kill(); proc.wait()
        os.kill(child, 0)  # the worker still lives
        with folder_lock(tmp_path / "run"): pass
    finally:
        proc.kill(); proc.wait()
        try: os.kill(child, 9)
        except ProcessLookupError: pass


def test_lock_in_one_process(tmp_path):
    "`folder_lock` refuses a second holder (also in the same process), names it, and lets go on exit or error."
    with folder_lock(tmp_path / "f", "job"):
        with pytest.raises(RuntimeError, match=f"{tmp_path / 'f'} is in use by another job: pid {os.getpid()} "):
            with folder_lock(tmp_path / "f", "job"): pass
    with pytest.raises(KeyError):
        with folder_lock(tmp_path / "f"): raise KeyError("boom")
    with folder_lock(tmp_path / "f"): pass
    assert list((tmp_path / "f").iterdir()) == []


def test_priors_folder_is_locked(tmp_path):
    "ComFusion's priors: a second `generate_priors` on a folder in use is refused before it writes anything."
    from dreamfuse_lit.comfusion.priors import generate_priors, read_priors
    kw = dict(num_inference_steps=2, height=32, width=32, progress=False, log=lambda s: None)
    with folder_lock(tmp_path / "priors", "priors run"):
        with pytest.raises(RuntimeError, match=f"{tmp_path / 'priors'} is in use by another"):
            generate_priors("tiny", ["a dog in the rain"], 2, tmp_path / "priors", **kw)
        assert sorted(p.name for p in (tmp_path / "priors").iterdir()) == [LOCK_FILE]
    generate_priors("tiny", ["a dog in the rain"], 2, tmp_path / "priors", **kw)
    assert len(read_priors(tmp_path / "priors", check_images=True)) == 2 and not (tmp_path / "priors" / LOCK_FILE).exists()

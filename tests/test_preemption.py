"Preemption: SIGUSR1 or SIGTERM stops a 2-process run at a step boundary with a checkpoint; resumed, it ends bit-identical."
import json, os, signal, subprocess, time
from pathlib import Path
import psutil, pytest
from dreamfuse_lit.core.training import save_config, launch, launch_command, find_checkpoint, _step_of
from test_training import tiny_cfg, weights, assert_same

COMMON = dict(steps=24, checkpoint_every=4, keep_checkpoints=10, lr_scheduler="cosine", warmup_steps=2, batch_size=1)
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}


@pytest.fixture(scope="module")
def cache(tmp_path_factory): return tmp_path_factory.mktemp("latents")


def _stop(config, run: Path, after_step: int, send) -> tuple[int, str]:
    "Launch `config` on 2 processes, call `send(launcher, workers)` once checkpoint `after_step` exists; (exit code, output)."
    proc = subprocess.Popen(launch_command(config, 2), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV,
                            start_new_session=True)
    try:
        ckpt, t0 = run / "checkpoints" / f"checkpoint-{after_step:06d}" / "checkpoint.json", time.time()
        while not ckpt.exists():
            assert proc.poll() is None, proc.stdout.read()[-3000:]
            assert time.time() - t0 < 300, "no checkpoint to stop at"
            time.sleep(.02)
        launcher = psutil.Process(proc.pid)
        workers = [p for p in launcher.children(recursive=True) if "dreamfuse_lit.core.training" in " ".join(p.cmdline())
                   and "accelerate" not in " ".join(p.cmdline())]
        assert len(workers) == 2, workers
        send(launcher, workers)
        out, _ = proc.communicate(timeout=300)
        return proc.returncode, out
    finally:
        if proc.poll() is None: os.killpg(proc.pid, signal.SIGKILL); proc.wait()


def test_preempted_twice_then_resumed_is_bit_identical(tmp_path, cache):
    launch(save_config(tiny_cfg(tmp_path / "straight", cache, **COMMON), tmp_path / "straight.yaml"), 2, log=lambda l: None, env=ENV)

    run = tmp_path / "stopped"
    config = save_config(tiny_cfg(run, cache, **COMMON), tmp_path / "stopped.yaml")
    # 1. SIGUSR1 to one training process only (SLURM's --signal to a task): both ranks stop at the next step boundary
    code, out = _stop(config, run, 4, lambda launcher, workers: workers[1].send_signal(signal.SIGUSR1))
    assert code == 0, out[-3000:]
    assert "PREEMPTED by" in out and "run again to resume" in out, out[-3000:]
    first = _step_of(find_checkpoint(run, 2, log=lambda m: None))
    assert 4 <= first < COMMON["steps"] and not (run / "final").exists(), (first, out[-2000:])
    # 2. resumed, then SIGTERM to the launcher (Kubernetes, or scancel): torchrun passes it on to the training processes
    nxt = (first // 4 + 1) * 4
    code, out = _stop(config, run, nxt, lambda launcher, workers: launcher.send_signal(signal.SIGTERM))
    assert f"resumed from" in out and "PREEMPTED by SIGTERM" in out, out[-3000:]
    second = _step_of(find_checkpoint(run, 2, log=lambda m: None))
    assert nxt <= second < COMMON["steps"] and not (run / "final").exists(), (second, out[-2000:])
    # 3. resumed to the end: the same weights and the same logged losses as the run that was never stopped
    lines = []
    launch(config, 2, log=lines.append, env=ENV)
    assert f"at step {second}" in "\n".join(lines)
    assert_same(weights(tmp_path / "straight"), weights(run))
    logged = lambda r: [x["loss"] for x in map(json.loads, (r / "metrics.jsonl").read_text().splitlines())]
    assert logged(tmp_path / "straight") == logged(run)


def test_launch_reports_a_preempted_run(tmp_path, cache):
    "`launch` raises InterruptedError with the PREEMPTED line, so a run notebook stops instead of plotting an unfinished run."
    run = tmp_path / "run"
    config = save_config(tiny_cfg(run, cache, steps=400, checkpoint_every=1000), tmp_path / "run.yaml")
    sent = []
    def stop_when_training(line):
        if sent or not ("sft:" in line and "%|" in line and " 0/" not in line): return  # wait until the progress bar moves
        for p in psutil.Process().children(recursive=True):
            try:
                cmd = " ".join(p.cmdline())  # the training process, not accelerate's launcher (whose command line names it too)
                if "dreamfuse_lit.core.training" in cmd and "accelerate" not in cmd: p.send_signal(signal.SIGTERM); sent.append(p.pid)
            except psutil.Error: pass  # a process that ended meanwhile
    with pytest.raises(InterruptedError, match=r"stopped before its last step \(exit code 0\): PREEMPTED by SIGTERM"):
        launch(config, 1, log=stop_when_training, env={**ENV, "TQDM_MININTERVAL": "0"})
    assert sent and not (run / "final").exists() and find_checkpoint(run, 1, log=lambda m: None) is not None

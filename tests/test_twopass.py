"""Two-pass LDPO under DDP: on 2 gloo processes, the gradient the engine synchronises equals the joint step's
(to rounding in float64; as accurately as the joint one in float32).

Run as a script under `accelerate launch`, this file is the worker: it builds the LDPO task twice (joint and two-pass),
runs one engine micro-batch (`_optimizer_step`, with an optimizer that only records the gradients) and writes them."""
import json, os, subprocess, sys
from pathlib import Path
import torch

TASK = dict(scales=(64,), max_sequence_length=16, sample_steps=1, sample_count=1)


def make_stage1(out_dir):
    "A stage-1 export of the tiny model with random non-zero LoRA and tags (as in the LDPO task lesson)."
    from peft import LoraConfig
    from dreamfuse_lit.core.zoo import load_flux_transformer
    from dreamfuse_lit.dreamfuse.dit import add_image_tags
    from dreamfuse_lit.dreamfuse.pipeline import save_dreamfuse_lora
    tr = load_flux_transformer("tiny")
    add_image_tags(tr)
    torch.manual_seed(0)
    tr.add_adapter(LoraConfig(r=4, lora_alpha=4, init_lora_weights="gaussian", modules_to_save=["image_tags"],
                              target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for n, p in tr.named_parameters():
            if "lora_B" in n or "image_tags" in n: p.copy_(torch.randn(p.shape, generator=g) * .3)
    return save_dreamfuse_lora(tr, out_dir)


class GradRecorder:
    "Stands in for the optimizer: `step` records the gradients, `zero_grad` clears them."
    def __init__(self, module): self.params, self.grads = [(n, p) for n, p in module.named_parameters() if p.requires_grad], None
    def step(self): self.grads = {n: p.grad.detach().clone() for n, p in self.params}
    def zero_grad(self, set_to_none=True):
        for _, p in self.params: p.grad = None


def worker(stage1, cache, out):
    from accelerate import Accelerator
    from accelerate.utils import gather_object
    from dreamfuse_lit.core.training import TrainConfig, get_task, _optimizer_step, _micro_batches
    acc = Accelerator(cpu=True)
    grads, losses, keys = {}, {}, None
    for dtype in (torch.float64, torch.float32):
        for mode in ("joint", "two_pass"):
            cfg = TrainConfig(method="ldpo", output_dir=str(Path(out) / mode), batch_size=2, max_grad_norm=0, report_to="none",
                              task={**TASK, "cache_dir": cache, "stage1_lora": stage1, "ldpo_backward": mode})
            task = get_task(cfg)
            module = task.build(cfg, acc).to(dtype)
            g = torch.Generator().manual_seed(1)  # move the policy away from the reference: margins far from 0
            with torch.no_grad():
                for p in module.parameters():
                    if p.requires_grad: p.add_(torch.randn(p.shape, generator=g).to(dtype) * .05)
            ds, sampler, collate = task.data(cfg, acc)
            task.empty_prompt = tuple(e.to(dtype) for e in task.empty_prompt)
            keys = keys or next(iter(sampler))
            rec = GradRecorder(module)
            module = acc.prepare(module)
            assert (type(module).__name__ == "DistributedDataParallel") == (acc.num_processes > 1)
            logs = _optimizer_step(acc, module, rec, _micro_batches(ds, sampler, collate, 0, 0), cfg, 0, None)
            name = f"{mode}-{str(dtype)[6:]}"
            grads[name], losses[name] = rec.grads, logs["loss"]
    rel = lambda a, b: max(((grads[a][n] - grads[b][n].to(grads[a][n])).norm() / grads[a][n].norm()).item() for n in grads[a])
    report = dict(rank=acc.process_index, keys=[list(map(str, k)) for k in keys], losses=losses,
                  two_vs_joint_64=rel("joint-float64", "two_pass-float64"), two_vs_joint_32=rel("joint-float32", "two_pass-float32"),
                  joint32_error=rel("joint-float64", "joint-float32"), two32_error=rel("joint-float64", "two_pass-float32"),
                  digest={k: float(sum(v.double().sum() for v in g.values())) for k, g in grads.items()})
    everyone = gather_object([report])
    if acc.is_main_process: Path(out, "result.json").write_text(json.dumps(everyone))
    acc.wait_for_everyone()
    if torch.distributed.is_initialized(): torch.distributed.destroy_process_group()


def test_two_pass_gradient_equals_joint_under_ddp(tmp_path):
    stage1 = make_stage1(tmp_path / "stage1")
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "2", "--num_machines", "1", "--multi_gpu",
           "--mixed_precision", "no", "--dynamo_backend", "no", __file__, str(stage1), str(tmp_path / "latents"), str(tmp_path)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ranks = json.loads((tmp_path / "result.json").read_text())
    assert len(ranks) == 2 and ranks[0]["keys"] != ranks[1]["keys"], "the two ranks should train on different pairs"
    for r in ranks:
        # the same arithmetic: in float64 the two-pass gradient is the joint one to rounding
        assert r["two_vs_joint_64"] < 1e-10, r
        # in float32 it is as accurate as the joint one: winner and loser gradients nearly cancel, so the joint float32
        # gradient itself is only good to ~1e-4 here, and the two passes (batch B, not 2B) round differently within that
        assert r["joint32_error"] < 1e-2 and r["two_vs_joint_32"] < 1e-3 and r["two32_error"] < 1.5 * r["joint32_error"] + 1e-6, r
        for d in ("float64", "float32"): assert abs(r["losses"][f"joint-{d}"] - r["losses"][f"two_pass-{d}"]) < 1e-6, r["losses"]
    # the gradients were all-reduced (the ranks' batches differ, their gradients agree), in every mode
    for k, v in ranks[0]["digest"].items(): assert abs(v - ranks[1]["digest"][k]) <= 1e-12 * max(1, abs(v)), (k, ranks)


if __name__ == "__main__": worker(*sys.argv[1:4])

"""One training step of stage 1 (SFT) against one of stage 2 (LDPO), with the reference as a second adapter or as a deep copy.

Four variants, each in a fresh subprocess so that its peak memory is its own:
- sft: LoRA r=16 + image tags, `flow_matching_loss` on one target (forward + backward + AdamW);
- ldpo: `add_ldpo_adapters` (one shared base, a trainable policy and a frozen reference adapter) and `ldpo_step_loss`
  on a (winner, loser) pair: a no-grad reference forward and a policy forward + backward, both at batch 2;
- two_pass: the same LDPO step with `backward="two_pass"`: a no-grad pass over both branches gives the per-pair
  coefficient, then winner and loser are run and backpropagated one at a time (peak: one branch's activations);
- naive: the same LDPO step with the reference as `copy.deepcopy` of the LoRA'd transformer (same FLOPs, a second copy
  of the base weights).
FLOPs: one step (forward + backward) of each variant under torch.utils.flop_counter.FlopCounterMode, which counts the
matrix products and attention (elementwise work is not counted); the FLOP ratio is the time ratio a perfectly efficient
implementation would reach. On CPU peak memory is the peak RSS minus the RSS right after the imports (the model is built after that, so its weights
count); on a GPU it is torch.cuda.max_memory_allocated. The model is a mid-size random FLUX-shaped transformer (inner
dim 512, 2 double and 4 single blocks, ~0.15 GB of float32 weights) at 256x256 (256 tokens per image, three images) with
a 64-token prompt on CPU; on a GPU the same model in bf16 at 512x512 with a 512-token prompt.

    python bench/ldpo_step.py [--steps 3] [--checkpointing]

Prints one line per variant, then `time_ratio_*`, `flop_ratio_*` and `memory_ratio_*` lines against sft.
"""
import argparse, copy, json, os, subprocess, sys, tempfile, time
from peak_memory import reset_peak_rss, status_mb  # bench/peak_memory.py (this folder is on sys.path)

MODEL = dict(num_layers=2, num_single_layers=4, num_attention_heads=8, attention_head_dim=64, joint_attention_dim=512,
             pooled_projection_dim=256, axes_dims_rope=[8, 28, 28])
VARIANTS = ("sft", "ldpo", "two_pass", "naive")
LORA = dict(r=16, lora_alpha=16, init_lora_weights="gaussian", target_modules=["to_q", "to_k", "to_v", "to_out.0"])

def make_stage1_lora(out_dir, dtype):
    "A stage-1 LoRA + image tags with random non-zero values, written by `save_dreamfuse_lora`."
    import torch
    from peft import LoraConfig
    from dreamfuse_lit.core.configs import random_flux_transformer
    from dreamfuse_lit.dreamfuse.dit import add_image_tags
    from dreamfuse_lit.dreamfuse.pipeline import save_dreamfuse_lora
    model = random_flux_transformer("dev", torch_dtype=dtype, seed=0, **MODEL)
    add_image_tags(model)
    model.add_adapter(LoraConfig(**LORA))
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_" in n or "image_tags" in n: p.copy_(torch.randn(p.shape, generator=g) * 0.02)
    save_dreamfuse_lora(model, out_dir)

def run_variant(variant, steps, stage1_dir, checkpointing=False):
    import torch
    from peft import LoraConfig
    from dreamfuse_lit.core.configs import random_flux_transformer
    from dreamfuse_lit.dreamfuse.positions import image_ids
    from dreamfuse_lit.dreamfuse.dit import add_image_tags, dreamfuse_forward
    from dreamfuse_lit.dreamfuse.flow import flow_matching_loss, flow_interpolate, flow_velocity
    from dreamfuse_lit.dreamfuse.ldpo_task import add_ldpo_adapters, ldpo_step_loss
    from dreamfuse_lit.dreamfuse.ldpo import ldpo_loss, localized_mask
    gpu = torch.cuda.is_available()
    dev, dtype = ("cuda", torch.bfloat16) if gpu else ("cpu", torch.float32)
    side, text_len = (512, 512) if gpu else (256, 64)
    if not gpu: torch.set_num_threads(2)
    base_rss = reset_peak_rss()
    if gpu: torch.cuda.reset_peak_memory_stats()
    model = random_flux_transformer("dev", torch_dtype=dtype, device=dev, seed=0, **MODEL)
    if variant in ("ldpo", "two_pass"): add_ldpo_adapters(model, stage1_dir)
    else:
        add_image_tags(model)
        model.requires_grad_(False)
        model.add_adapter(LoraConfig(**LORA, modules_to_save=["image_tags"]))
    ref = copy.deepcopy(model).requires_grad_(False).eval() if variant == "naive" else None
    if checkpointing: model.enable_gradient_checkpointing()
    model.train()
    cfg, h = model.config, side // 16
    g = torch.Generator(dev).manual_seed(0)
    rnd = lambda *s: torch.randn(*s, generator=g, device=dev, dtype=dtype)
    ids = image_ids(h, h).to(dev)
    x0, x1, noise = (rnd(1, h * h, cfg.in_channels) for _ in range(3))
    emb, pooled, txt_ids = rnd(1, text_len, cfg.joint_attention_dim), rnd(1, cfg.pooled_projection_dim), torch.zeros(text_len, 3, device=dev)
    conds, cond_ids = (rnd(1, h * h, cfg.in_channels), rnd(1, h * h, cfg.in_channels)), (ids, ids)
    t = torch.full((1,), .5, device=dev, dtype=dtype)
    box, hw = (side / 4, side / 4, side / 2, side / 2), (side, side)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)

    def loss_fn():
        if variant == "sft":
            return flow_matching_loss(model, x0, ids, t, noise, encoder_hidden_states=emb, txt_ids=txt_ids, pooled_projections=pooled,
                                      guidance=torch.full((1,), 3.5, device=dev), cond_states=conds, cond_ids=cond_ids, cond_timestep=0.)
        if variant in ("ldpo", "two_pass"):
            return ldpo_step_loss(model, x0, x1, ids, box, hw, emb, pooled, txt_ids, guidance=3.5, cond_states=conds,
                                  cond_ids=cond_ids, p=0., noise=noise, t=t, backward="joint" if variant == "ldpo" else "two_pass")
        two = lambda x: torch.cat([x, x])  # naive: same batch-2 forward as `ldpo_predictions`, reference = the copy
        kw = dict(encoder_hidden_states=two(emb), txt_ids=txt_ids, pooled_projections=two(pooled), timestep=two(t),
                  guidance=torch.full((2,), 3.5, device=dev, dtype=dtype), cond_states=tuple(map(two, conds)),
                  cond_ids=cond_ids, cond_timestep=0.)
        x_t = flow_interpolate(torch.cat([x0, x1]), two(noise), two(t))
        with torch.no_grad(): ref_w, ref_l = dreamfuse_forward(ref, x_t, ids, **kw).chunk(2)
        pred_w, pred_l = dreamfuse_forward(model, x_t, ids, **kw).chunk(2)
        mask = localized_mask(box, hw, alpha=2.).to(dev)
        return ldpo_loss(pred_w, pred_l, ref_w, ref_l, flow_velocity(x0, noise), flow_velocity(x1, noise), mask, beta=5000.)

    def forward_backward():
        out = loss_fn()
        if variant == "two_pass":
            for one_branch in out[2]: one_branch().backward()  # winner, then loser
        else: (out[0] if isinstance(out, tuple) else out).backward()

    def step():
        forward_backward(); opt.step(); opt.zero_grad(set_to_none=True)
        if gpu: torch.cuda.synchronize()
    step()  # warm-up (allocator, kernels, AdamW state)
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(steps): step()
    sec, cpu_sec = (time.perf_counter() - t0) / steps, (time.process_time() - c0) / steps
    peak = torch.cuda.max_memory_allocated() / 2**20 if gpu else status_mb("VmHWM") - base_rss
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as counter: forward_backward()  # after the peak is read: counting allocates too
    opt.zero_grad(set_to_none=True)
    n_base = sum(p.numel() for n, p in model.named_parameters() if "lora_" not in n and "image_tags" not in n)
    return dict(device=torch.cuda.get_device_name() if gpu else "cpu", side=side, sec_per_step=sec, cpu_sec_per_step=cpu_sec, peak_mb=peak, gflops=counter.get_total_flops() / 1e9,
                base_params_m=n_base / 1e6, trainable_params_m=sum(p.numel() for p in params) / 1e6,
                weights_mb=n_base * torch.finfo(dtype).bits / 8 / 2**20)

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--checkpointing", action="store_true", help="gradient checkpointing in all three variants")
    ap.add_argument("--variant", choices=list(VARIANTS), help=argparse.SUPPRESS)
    ap.add_argument("--stage1", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.variant:
        print(json.dumps(run_variant(a.variant, a.steps, a.stage1, a.checkpointing))); return
    import torch
    res, env = {}, {**os.environ, "HF_HUB_OFFLINE": "1"}
    with tempfile.TemporaryDirectory() as d:
        make_stage1_lora(d, torch.bfloat16 if torch.cuda.is_available() else torch.float32)
        for v in VARIANTS:
            out = subprocess.run([sys.executable, __file__, "--variant", v, "--steps", str(a.steps), "--stage1", d] + ["--checkpointing"] * a.checkpointing, check=True,
                                 capture_output=True, text=True, env=env).stdout
            res[v] = r = json.loads(out.strip().splitlines()[-1])
            print(f"{v:>8}: {r['sec_per_step']:.3f} s/step ({r['cpu_sec_per_step']:.3f} s CPU), {r['gflops']:.1f} GFLOP/step, peak {r['peak_mb']:.0f} MiB "
                  f"({r['base_params_m']:.0f}M base params = {r['weights_mb']:.0f} MiB, {r['trainable_params_m']:.2f}M trainable, "
                  f"{r['side']}x{r['side']}, {r['device']})")
    ratio = lambda key, v: res[v][key] / res["sft"][key]
    for v in ("ldpo", "two_pass", "naive"):
        print(f"time_ratio_{'twopass' if v == 'two_pass' else v}_vs_sft: {ratio('sec_per_step', v):.2f}")
        print(f"flop_ratio_{'twopass' if v == 'two_pass' else v}_vs_sft: {ratio('gflops', v):.2f}")
        print(f"memory_ratio_{'twopass' if v == 'two_pass' else v}_vs_sft: {ratio('peak_mb', v):.2f}")
    if not torch.cuda.is_available():  # a shared CPU: the processes' CPU seconds are steadier than the wall clock
        for v in ("ldpo", "two_pass", "naive"):
            print(f"cpu_time_ratio_{'twopass' if v == 'two_pass' else v}_vs_sft: {ratio('cpu_sec_per_step', v):.2f}")
    print(f"time_over_flop_ratio_ldpo: {ratio('sec_per_step', 'ldpo') / ratio('gflops', 'ldpo'):.2f}")
    print(f"time_over_flop_ratio_twopass: {ratio('sec_per_step', 'two_pass') / ratio('gflops', 'two_pass'):.2f}")

if __name__ == "__main__": main()

"""One stage-1 training step (dreamfuse_forward + backward, LoRA r=16) with and without gradient checkpointing.

Each variant runs in a fresh subprocess so its peak memory is its own: on a GPU the peak of
torch.cuda.max_memory_allocated, on CPU the peak RSS minus the RSS right after the imports. On a GPU the
model is the real-size FLUX.1-dev transformer (random bf16 weights) at 512x512 with two conditions; on CPU
a mid-size FLUX-shaped model at 256x256 so that the run fits in a few minutes on 2 cores.

    python bench/dit_step.py [--steps 3]
"""
import argparse, json, os, resource, subprocess, sys, time

def _rss_mb():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) / 1024

def run_variant(checkpointing, steps):
    import torch
    from peft import LoraConfig
    from dreamfuse_lit.core.configs import random_flux_transformer
    from dreamfuse_lit.dreamfuse.positions import image_ids
    from dreamfuse_lit.dreamfuse.dit import add_image_tags
    from dreamfuse_lit.dreamfuse.flow import flow_matching_loss
    base_rss = _rss_mb()
    gpu = torch.cuda.is_available()
    dev, dtype = ("cuda", torch.bfloat16) if gpu else ("cpu", torch.float32)
    if gpu: side, text_len, model = 512, 512, random_flux_transformer("dev", torch_dtype=dtype, device=dev)
    else:
        torch.set_num_threads(2)
        side, text_len = 256, 64
        model = random_flux_transformer("dev", torch_dtype=dtype, device=dev, num_layers=2, num_single_layers=4,
                                        num_attention_heads=8, attention_head_dim=64, joint_attention_dim=512,
                                        pooled_projection_dim=256, axes_dims_rope=[8, 28, 28])
    add_image_tags(model)
    model.requires_grad_(False)
    model.add_adapter(LoraConfig(r=16, lora_alpha=16, init_lora_weights="gaussian",
                                 target_modules=["to_q", "to_k", "to_v", "to_out.0"], modules_to_save=["image_tags"]))
    if checkpointing: model.enable_gradient_checkpointing()
    model.train()
    cfg, h = model.config, side // 16
    g = torch.Generator(dev).manual_seed(0)
    rnd = lambda *s: torch.randn(*s, generator=g, device=dev, dtype=dtype)
    ids = image_ids(h, h).to(dev)
    x0, noise = rnd(1, h * h, cfg.in_channels), rnd(1, h * h, cfg.in_channels)
    kw = dict(encoder_hidden_states=rnd(1, text_len, cfg.joint_attention_dim), txt_ids=torch.zeros(text_len, 3, device=dev),
              pooled_projections=rnd(1, cfg.pooled_projection_dim), guidance=torch.full((1,), 3.5, device=dev),
              cond_states=(rnd(1, h * h, cfg.in_channels), rnd(1, h * h, cfg.in_channels)), cond_ids=(ids, ids))
    t = torch.full((1,), .5, device=dev)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    def step():
        loss = flow_matching_loss(model, x0, ids, t, noise, **kw)
        loss.backward(); opt.step(); opt.zero_grad(set_to_none=True)
        if gpu: torch.cuda.synchronize()
    step()  # warm-up (allocator, kernels)
    if gpu: torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(steps): step()
    sec = (time.perf_counter() - t0) / steps
    peak = torch.cuda.max_memory_allocated() / 2**20 if gpu else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - base_rss
    return dict(device=torch.cuda.get_device_name() if gpu else "cpu", side=side, sec_per_step=sec, peak_mb=peak,
                params_m=sum(p.numel() for p in model.parameters()) / 1e6)

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--variant", choices=["plain", "checkpointing"], help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.variant:
        print(json.dumps(run_variant(a.variant == "checkpointing", a.steps))); return
    res = {}
    for v in ("plain", "checkpointing"):
        out = subprocess.run([sys.executable, __file__, "--variant", v, "--steps", str(a.steps)], check=True,
                             capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}).stdout
        res[v] = json.loads(out.strip().splitlines()[-1])
        r = res[v]
        print(f"{v:>14}: {r['sec_per_step']:.3f} s/step, peak {r['peak_mb']:.0f} MiB "
              f"({r['params_m']:.0f}M params, {r['side']}x{r['side']}, {r['device']})")
    print(f"time_ratio_ckpt_vs_plain: {res['checkpointing']['sec_per_step'] / res['plain']['sec_per_step']:.2f}")
    print(f"memory_ratio_ckpt_vs_plain: {res['checkpointing']['peak_mb'] / res['plain']['peak_mb']:.2f}")

if __name__ == "__main__": main()

"""One ComFusion training step against one DreamBooth step, on Stable-Diffusion-1.5-shaped random models.

The real code path: `ComFusionTask.build` / `ComFusionTask.data` / `ComFusionTask.loss` of `dreamfuse_lit.comfusion.task`,
unchanged, on models that `from_pretrained` loads from directories this script writes once with `save_pretrained`:
- Stable Diffusion 1.5's shape: `random_sd_unet("sd15")`, `random_sd_vae("sd15")`, a random `CLIPTextModel` of SD 1.5's
  text encoder (hidden 768, 12 layers, 12 heads, MLP 3072, 77 positions, vocabulary 49408) with the project's offline
  `tiny_clip_tokenizer()`, and a DDIM scheduler with SD's betas;
- DINO ViT-S/16's shape (hidden 384, 12 layers, 6 heads, 224x224) for the fusion stream's instance loss;
- CLIP ViT-B/32's shape (vision 768 x 12 layers, patch 32; text 512 x 12 layers; projection 512) for its scene loss;
- diffusers' default `AutoencoderTiny` (TAESD's shape) for `decoder="tiny"`.
Variants, each in a fresh subprocess with the same seed and the same batch:
- dreambooth: `dreambooth_task()` (class prior "a dog", no fusion stream);
- comfusion: the defaults (class-scene priors, fusion stream with tau=3, fusion_grad="last", decoder="vae");
- comfusion-grad-all: fusion_grad="all" (all tau UNet calls of the coarse denoise differentiated);
- comfusion-tiny-decoder: decoder="tiny" (the fusion stream decodes with the AutoencoderTiny);
- comfusion-grad-all-tiny-decoder: both.
A step is what `training.train` does per optimizer step: `loss` under `accelerator.autocast()`, `accelerator.backward`,
gradient clipping (TrainConfig.max_grad_norm), AdamW `step` and `zero_grad`. The priors are drawn once (num_priors=2,
prior_steps=1, in a preparing subprocess, through the same `task.data`) and reused, so only training steps are timed:
`--warmup` steps untimed, then the median of `--steps` timed steps.
Peak memory: on a GPU torch.cuda.max_memory_allocated; on CPU the peak RSS (VmHWM, reset after the imports) minus the RSS
after the imports, so the weights, gradients, AdamW state and activations all count. Full fine-tuning (the paper's,
UNet + text encoder trained, ~1.0B trainable parameters) needs ~17 GB of RAM on CPU before activations, more than a
24 GB machine has once activations at 512 px join; LoRA (rank 4, text encoder frozen) needs ~5 GB. So the defaults
follow the device: on a GPU the paper's setting (full fine-tuning at 512 px), on CPU LoRA at 256 px; `--full`,
`--lora` and `--resolution` choose explicitly.
FLOPs: one more step of each variant under torch.utils.flop_counter.FlopCounterMode (matrix products, convolutions and
attention; elementwise work is not counted), so that each time ratio stands beside the FLOP ratio a perfectly efficient
implementation would reach (`flop_ratio_comfusion_vs_dreambooth`).

    python bench/comfusion_step.py [--resolution 512] [--steps 3] [--warmup 1] [--lora | --full] [--bf16] [--variants a,b]
"""
import argparse, json, os, statistics, subprocess, sys, tempfile, time
from peak_memory import reset_peak_rss, status_mb  # bench/peak_memory.py (this folder is on sys.path)
from pathlib import Path

VARIANTS = {  # ComFusionTask arguments of each variant; "dreambooth" goes through `dreambooth_task`
    "dreambooth": None,
    "comfusion": dict(),
    "comfusion-grad-all": dict(fusion_grad="all"),
    "comfusion-tiny-decoder": dict(decoder="tiny"),
    "comfusion-grad-all-tiny-decoder": dict(fusion_grad="all", decoder="tiny"),
}
PAPER = dict(comfusion_s=597.7, dreambooth_s=491.8, steps=1200)  # ComFusion paper: training time of 1200 steps
MODELS_VERSION = 1  # bump when a model below changes shape, so that an old cache is not reused
CLIP_VOCAB = 49408  # the real CLIP vocabulary; the tiny tokenizer's ids are a subset of it

# ---------------------------------------------------------------- random models, saved once

def _seeded(seed):
    import torch
    torch.manual_seed(seed)

def _build_sd15(d):
    import torch
    from diffusers import DDIMScheduler, StableDiffusionPipeline
    from transformers import CLIPTextConfig, CLIPTextModel
    from dreamfuse_lit.core.configs import random_sd_unet, random_sd_vae, tiny_clip_tokenizer
    tok = tiny_clip_tokenizer()
    _seeded(2)
    te = CLIPTextModel(CLIPTextConfig(vocab_size=CLIP_VOCAB, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                                      num_attention_heads=12, max_position_embeddings=77, projection_dim=768,
                                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id))
    sched = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000,
                          clip_sample=False, set_alpha_to_one=False, steps_offset=1)
    StableDiffusionPipeline(unet=random_sd_unet("sd15", seed=0), vae=random_sd_vae("sd15", seed=1), text_encoder=te, tokenizer=tok,
                            scheduler=sched, safety_checker=None, feature_extractor=None,
                            requires_safety_checker=False).save_pretrained(d)

def _build_dino(d):
    from transformers import ViTConfig, ViTImageProcessorPil, ViTModel
    _seeded(3)
    ViTModel(ViTConfig(hidden_size=384, intermediate_size=1536, num_hidden_layers=12, num_attention_heads=6, image_size=224,
                       patch_size=16), add_pooling_layer=False).save_pretrained(d)
    ViTImageProcessorPil(size=dict(height=224, width=224), image_mean=[0.485, 0.456, 0.406],
                         image_std=[0.229, 0.224, 0.225]).save_pretrained(d)

def _build_clip(d):
    from transformers import CLIPConfig, CLIPImageProcessorPil, CLIPModel, CLIPProcessor
    from dreamfuse_lit.core.configs import tiny_clip_tokenizer
    tok = tiny_clip_tokenizer()
    text = dict(vocab_size=CLIP_VOCAB, hidden_size=512, intermediate_size=2048, num_hidden_layers=12, num_attention_heads=8,
                max_position_embeddings=77, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    vision = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12, image_size=224, patch_size=32)
    _seeded(4)
    CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=512)).save_pretrained(d)
    CLIPProcessor(image_processor=CLIPImageProcessorPil(), tokenizer=tok).save_pretrained(d)

def _build_taesd(d):
    from diffusers import AutoencoderTiny
    _seeded(5)
    AutoencoderTiny().save_pretrained(d)  # diffusers' defaults are TAESD's shape

BUILDERS = dict(sd15=_build_sd15, dino=_build_dino, clip=_build_clip, taesd=_build_taesd)

def model_dirs(models_dir, small=False) -> dict:
    "The random models' folders; with `small`, the zoo's tiny SD, DINO and CLIP (for dry runs: same code, small shapes)."
    dirs = {k: Path(models_dir) / f"{k}-random-v{MODELS_VERSION}" for k in BUILDERS}
    if small:
        from dreamfuse_lit.core.zoo import resolve
        dirs.update(sd15=Path(resolve("tiny", "sd")), dino=Path(resolve("tiny", "dino")), clip=Path(resolve("tiny", "clip")))
    return dirs

def build_models(models_dir, small=False) -> dict:
    "Write each random model once (atomically, via `zoo.build_once`) and return their directories."
    from dreamfuse_lit.core.zoo import build_once
    dirs = model_dirs(models_dir, small)
    for k, d in dirs.items():
        if not d.is_dir():
            t0 = time.perf_counter(); build_once(d, BUILDERS[k])
            print(f"built {d} in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    return dirs

# ---------------------------------------------------------------- one variant

def make_task(variant, a, dirs):
    "The task of `variant`, with the bench's cheap priors and the random models."
    from dreamfuse_lit.comfusion.task import ComFusionTask, dreambooth_task
    kind = "class" if variant == "dreambooth" else "class_scene"
    mp = "bf16" if a.bf16 else "no"
    prior_dir = Path(a.models_dir) / f"priors-{kind}-r{a.resolution}-{mp}-n{a.num_priors}-s{a.prior_steps}{'-small' * a.small}"
    common = dict(num_priors=a.num_priors, prior_steps=a.prior_steps, prior_dir=str(prior_dir), resolution=a.resolution,
                  dino=str(dirs["dino"]), clip=str(dirs["clip"]), tiny_decoder=str(dirs["taesd"]),
                  lora_rank=4 if a.lora else 0, train_text_encoder=not a.lora)
    return dreambooth_task(**common) if variant == "dreambooth" else ComFusionTask(**common, **VARIANTS[variant])

def make_config(a, dirs, out_dir):
    from dreamfuse_lit.core.training import TrainConfig
    return TrainConfig(method="comfusion", pretrained=str(dirs["sd15"]), output_dir=str(out_dir), batch_size=a.batch_size,
                       mixed_precision="bf16" if a.bf16 else "no", gradient_checkpointing=a.gradient_checkpointing,
                       seed=0, report_to="none")

def _accelerator(cfg):
    import torch
    from accelerate import Accelerator
    return Accelerator(mixed_precision=cfg.mixed_precision, cpu=not torch.cuda.is_available())

def prepare(a):
    "Build the models and draw both prior sets (class and class-scene) through `task.build` + `task.data`."
    import torch
    dirs = build_models(a.models_dir, a.small)
    with tempfile.TemporaryDirectory(prefix="comfusion_bench_") as out:
        cfg = make_config(a, dirs, out)
        acc = _accelerator(cfg)
        for v in ("dreambooth", "comfusion"):
            t0 = time.perf_counter()
            task = make_task(v, a, dirs)
            task.build(cfg, acc); task.data(cfg, acc)
            print(f"priors of {v}: ready in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
            del task
            if torch.cuda.is_available(): torch.cuda.empty_cache()

def run_variant(variant, a):
    import torch
    from accelerate.utils import send_to_device
    from dreamfuse_lit.core.training import make_optimizer, step_generator
    gpu = torch.cuda.is_available()
    if a.device == "cuda" and not gpu: raise RuntimeError("--device cuda: torch sees no CUDA device")
    base_rss = reset_peak_rss()
    if gpu: torch.cuda.reset_peak_memory_stats()
    dirs = model_dirs(a.models_dir, a.small)
    with tempfile.TemporaryDirectory(prefix="comfusion_bench_") as out:
        cfg = make_config(a, dirs, out)
        acc = _accelerator(cfg)
        torch.manual_seed(cfg.seed)
        task = make_task(variant, a, dirs)
        t0 = time.perf_counter()
        module = task.build(cfg, acc)
        ds, sampler, collate = task.data(cfg, acc)
        setup_s = time.perf_counter() - t0
        params = [p for p in module.parameters() if p.requires_grad]
        optimizer = make_optimizer(params, cfg)
        module, optimizer = acc.prepare(module, optimizer)
        keys = next(iter(sampler))  # the first batch of epoch 0: the same in every variant, reused at every step
        batch = send_to_device(torch.utils.data.default_collate([ds[i] for i in keys]) if collate is None else collate([ds[i] for i in keys]), acc.device)
        module.train()

        def step(k):
            with acc.autocast():
                res = module(batch, step_generator(cfg.seed, k))
            acc.backward(res["loss"])
            if cfg.max_grad_norm > 0: acc.clip_grad_norm_(module.parameters(), cfg.max_grad_norm)
            optimizer.step(); optimizer.zero_grad(set_to_none=True)
            if gpu: torch.cuda.synchronize()
            return {k: float(v.detach()) if torch.is_tensor(v) else float(v) for k, v in res.items()}

        times, cpu_times, losses = [], [], None
        for k in range(a.warmup + a.steps):
            t0, c0 = time.perf_counter(), time.process_time()
            losses = step(k)
            dt, dc = time.perf_counter() - t0, time.process_time() - c0
            if k >= a.warmup: times.append(dt); cpu_times.append(dc)
            print(f"{variant} step {k} ({'warmup' if k < a.warmup else 'timed'}): {dt:.2f} s wall, {dc:.2f} s CPU",
                  file=sys.stderr, flush=True)
        peak = torch.cuda.max_memory_allocated() / 2**20 if gpu else status_mb("VmHWM") - base_rss
        from torch.utils.flop_counter import FlopCounterMode
        with FlopCounterMode(display=False) as counter: step(a.warmup + a.steps)  # after the peak is read: counting allocates too
        return dict(gflops=counter.get_total_flops() / 1e9, variant=variant, device=torch.cuda.get_device_name() if gpu else f"cpu ({torch.get_num_threads()} threads)",
                    resolution=task.resolution, batch_size=cfg.batch_size, sec_per_step=statistics.median(times), step_times=times,
                    cpu_sec_per_step=statistics.median(cpu_times),
                    setup_s=setup_s, peak_mb=peak, trainable_params_m=sum(p.numel() for p in params) / 1e6, last_losses=losses,
                    mixed_precision=cfg.mixed_precision, lora_rank=task.lora_rank)

# ---------------------------------------------------------------- driver

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--resolution", type=int, help="training resolution (default: SD 1.5's 512 on a GPU, 256 on CPU)")
    ap.add_argument("--steps", type=int, default=3, help="timed steps per variant (the median is reported)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed steps before them")
    ap.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated subset of {list(VARIANTS)}")
    ap.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="cpu hides the GPUs from the variants")
    ap.add_argument("--models-dir", default="/tmp/dreamfuse_bench_models", help="cache of the random models and priors")
    ap.add_argument("--lora", action="store_true", help="LoRA rank 4 on the UNet (text encoder frozen) instead of full fine-tuning (default on CPU)")
    ap.add_argument("--full", action="store_true", help="full fine-tuning of UNet + text encoder (default on a GPU)")
    ap.add_argument("--bf16", action="store_true", help="bf16 autocast, frozen weights in bf16 (TrainConfig.mixed_precision='bf16')")
    ap.add_argument("--gradient-checkpointing", action="store_true", help="TrainConfig.gradient_checkpointing in every variant")
    ap.add_argument("--batch-size", type=int, default=1, help="instance images per step (each with one prior)")
    ap.add_argument("--num-priors", type=int, default=2, help="prior images drawn once and reused")
    ap.add_argument("--prior-steps", type=int, default=1, help="DDIM steps of a prior image")
    ap.add_argument("--small", action="store_true", help="the zoo's tiny SD, DINO and CLIP in place of the real shapes (dry runs)")
    ap.add_argument("--variant", help=argparse.SUPPRESS)
    ap.add_argument("--prepare", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.variant is None and not a.prepare:  # the driver fills in the device's defaults and passes them on explicitly
        import torch
        gpu = torch.cuda.is_available() and a.device != "cpu"
        if a.lora and a.full: ap.error("--lora and --full exclude each other")
        a.lora = a.lora or not (a.full or gpu)
        a.resolution = a.resolution or (512 if gpu else 256)
    if a.variant:
        print(json.dumps(run_variant(a.variant, a))); return
    if a.prepare:
        prepare(a); return
    variants = [v.strip() for v in a.variants.split(",") if v.strip()]
    if bad := [v for v in variants if v not in VARIANTS]: ap.error(f"--variants: unknown {bad}; choose from {list(VARIANTS)}")
    if "dreambooth" not in variants: variants.insert(0, "dreambooth")  # every ratio is against it
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1"}
    if a.device == "cpu": env["CUDA_VISIBLE_DEVICES"] = ""
    passed = [f"--{k.replace('_', '-')}={v}" for k, v in vars(a).items()
              if k in ("resolution", "steps", "warmup", "device", "models_dir", "batch_size", "num_priors", "prior_steps")]
    passed += [f"--{k.replace('_', '-')}" for k in ("lora", "bf16", "gradient_checkpointing", "small") if getattr(a, k)]
    run = lambda extra: subprocess.run([sys.executable, __file__, *passed, *extra], check=True, stdout=subprocess.PIPE, text=True, env=env).stdout
    t0 = time.perf_counter()
    run(["--prepare"])
    print(f"models and priors ready in {time.perf_counter() - t0:.0f} s ({a.models_dir})", flush=True)
    res = {}
    for v in variants:
        res[v] = r = json.loads(run(["--variant", v]).strip().splitlines()[-1])
        print(f"{v:>32}: {r['sec_per_step']:.2f} s/step, {r['gflops']:.3f} GFLOP/step (steps {', '.join(f'{t:.2f}' for t in r['step_times'])}; "
              f"CPU time {r['cpu_sec_per_step']:.2f} s), "
              f"peak {r['peak_mb']:.0f} MiB, {r['trainable_params_m']:.1f}M trainable, setup {r['setup_s']:.0f} s", flush=True)
    db, r0 = res["dreambooth"], res[variants[0]]
    what = f"LoRA r={r0['lora_rank']}, text encoder frozen" if a.lora else "full fine-tuning of UNet + text encoder"
    print(f"\nSD-1.5-shaped random models, {r0['resolution']}x{r0['resolution']}, batch {r0['batch_size']} instance + "
          f"{r0['batch_size']} prior, {what}, mixed precision {r0['mixed_precision']}, {r0['device']}, "
          f"median of {a.steps} steps after {a.warmup} warmup")
    cpu = r0["device"].startswith("cpu")  # a shared CPU: the process's CPU seconds are steadier than the wall clock
    print(f"{'variant':>32} {'s/step':>8} {'peak MiB':>9} {'time x DB':>9} {'mem x DB':>9}" + (f" {'CPU s':>8} {'CPU x DB':>9}" if cpu else ""))
    for v, r in res.items():
        print(f"{v:>32} {r['sec_per_step']:8.2f} {r['peak_mb']:9.0f} {r['sec_per_step'] / db['sec_per_step']:9.2f} "
              f"{r['peak_mb'] / db['peak_mb']:9.2f}" +
              (f" {r['cpu_sec_per_step']:8.2f} {r['cpu_sec_per_step'] / db['cpu_sec_per_step']:9.2f}" if cpu else ""))
    print(f"{'paper (ComFusion vs DreamBooth)':>32} {PAPER['comfusion_s'] / PAPER['steps']:8.2f} {'':>9} "
          f"{PAPER['comfusion_s'] / PAPER['dreambooth_s']:9.2f}  ({PAPER['comfusion_s']} s vs {PAPER['dreambooth_s']} s "
          f"for {PAPER['steps']} steps)")
    for v in res:
        if v == "dreambooth": continue
        print(f"memory_ratio_{v.replace('-', '_')}_vs_dreambooth: {res[v]['peak_mb'] / db['peak_mb']:.2f}")
    for v in res:
        if v in ("dreambooth", "comfusion"): continue
        print(f"time_ratio_{v.replace('-', '_')}_vs_dreambooth: {res[v]['sec_per_step'] / db['sec_per_step']:.2f}")
    if cpu and "comfusion" in res:
        print(f"cpu_time_ratio_comfusion_vs_dreambooth: {res['comfusion']['cpu_sec_per_step'] / db['cpu_sec_per_step']:.2f}")
    for v in res:
        if v == "dreambooth": continue
        print(f"flop_ratio_{v.replace('-', '_')}_vs_dreambooth: {res[v]['gflops'] / db['gflops']:.2f}")
    if "comfusion" in res:
        print(f"time_ratio_comfusion_vs_dreambooth: {res['comfusion']['sec_per_step'] / db['sec_per_step']:.2f}")
        t, f = res['comfusion']['sec_per_step'] / db['sec_per_step'], res['comfusion']['gflops'] / db['gflops']
        print(f"time_over_flop_ratio_comfusion: {t / f:.2f}")

if __name__ == "__main__": main()

"""The one prepared script for a lent GPU: the real-size bf16 path of DreamFuse and ComFusion, measured in one run.

On one H100/H200 it takes about 5 minutes (8 at most) and runs, on a FLUX.1-dev-shaped transformer with random bf16
weights (`random_flux_transformer("dev")`, 12B parameters):
1. equivalence: `dreamfuse_forward` against the stock `FluxTransformer2DModel.forward` in bf16, without conditions
   and (zero image tags, shared timestep) on the concatenated sequence with two conditions;
2. training steps at 512^2 and 1024^2 with two conditions, gradient checkpointing, LoRA r=16 trained in float32
   under bf16 autocast (as the engine trains): one SFT step, one LDPO step (joint) and one LDPO step (two-pass), each
   after a warm-up step: s/step and peak GiB;
3. `DreamFusePipeline`, 28 steps at 1024^2 with FLUX.1-dev-shaped random VAE, CLIP-L and T5-XXL, without and with
   `enable_model_cpu_offload()`: s/image and peak GiB;
4. the SD 1.5 ComFusion vs DreamBooth step at 512^2 (`bench/comfusion_step.py --bf16`, full fine-tuning);
5. sharded training: the engine (`launch`) trains the tiny SFT task under `fsdp_config` (FSDP2, one process: the
   sharded code path, not its speed), writes sharded checkpoints through accelerate's state API, then resumes from
   them (accelerate runs FSDP only on GPUs; on CPU the same commands run unsharded).
It writes `<out>/<device>-<date>.json` after every section (a run cut short keeps what it measured) and, at the end,
`<out>/<device>-<date>.md`, the table it also prints. Exit code 1 if a section failed (its error is in the results).

`--dry-run` runs the same code on CPU with small shapes (a FLUX-shaped model a few MB large, 64^2 and 128^2, 2
pipeline steps, the tiny SD models) in about a minute, so that the script is known to run before a GPU is lent.

    python bench/gpu_check.py [--dry-run] [--out bench/results] [--sections equivalence,training,pipeline,comfusion]
"""
import argparse, datetime, gc, json, os, platform, re, subprocess, sys, tempfile, time, traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
SECTIONS = ("equivalence", "training", "pipeline", "comfusion", "fsdp")
SHAPES = dict(  # what differs between the GPU run and the dry run: shapes only
    gpu=dict(model={}, sides=(512, 1024), text_len=512, pipe_side=1024, pipe_steps=28, sd_resolution=512,
             t5=dict(d_model=4096, d_ff=10240, d_kv=64, num_heads=64, num_layers=24), clip=dict(hidden_size=768, intermediate_size=3072,
             num_hidden_layers=12, num_attention_heads=12, projection_dim=768), vae="dev", comfusion=["--steps", "2", "--warmup", "1"]),
    dry=dict(model=dict(in_channels=16, num_layers=1, num_single_layers=2, num_attention_heads=2, attention_head_dim=32, joint_attention_dim=64,
                        pooled_projection_dim=32, axes_dims_rope=[8, 12, 12]),
             sides=(64, 128), text_len=16, pipe_side=128, pipe_steps=2, sd_resolution=64,
             t5=dict(d_model=64, d_ff=96, d_kv=16, num_heads=4, num_layers=2), clip=dict(hidden_size=32, intermediate_size=37,
             num_hidden_layers=2, num_attention_heads=4, projection_dim=32), vae="tiny",
             comfusion=["--steps", "1", "--warmup", "0", "--small", "--lora", "--num-priors", "1"]),
)
LORA = dict(r=16, lora_alpha=16, init_lora_weights="gaussian", target_modules=["to_q", "to_k", "to_v", "to_out.0"])


class Check:
    "The device, the dtype, a seeded random-tensor maker, timing and peak memory; results written as they come."
    def __init__(self, dry:bool, out:Path):
        import torch
        self.torch, self.dry, self.S = torch, dry, SHAPES["dry" if dry else "gpu"]
        self.gpu = torch.cuda.is_available() and not dry
        if not dry and not self.gpu: raise SystemExit("gpu_check: torch sees no CUDA device; use --dry-run on a CPU")
        self.dev, self.dtype = ("cuda" if self.gpu else "cpu"), torch.bfloat16
        self.device_name = torch.cuda.get_device_name() if self.gpu else f"cpu-dry-run"
        stem = f"{re.sub(r'[^A-Za-z0-9]+', '-', self.device_name).strip('-')}-{datetime.date.today().isoformat()}"
        self.json_path, self.md_path = out / f"{stem}.json", out / f"{stem}.md"
        self.results = dict(device=self.device_name, dry_run=dry, torch=torch.__version__, python=platform.python_version(),
                            started=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), sections={})
        out.mkdir(parents=True, exist_ok=True)

    def rnd(self, *shape, g):
        return self.torch.randn(*shape, generator=g, device=self.dev, dtype=self.dtype)

    def sync(self):
        if self.gpu: self.torch.cuda.synchronize()

    def reset_peak(self):
        gc.collect()
        if self.gpu: self.torch.cuda.empty_cache(); self.torch.cuda.reset_peak_memory_stats()

    def peak_gib(self):
        return round(self.torch.cuda.max_memory_allocated() / 2**30, 2) if self.gpu else None

    def timed(self, fn):
        "Seconds of one call of `fn` (synchronised), and the peak GiB during it."
        self.sync(); self.reset_peak(); t0 = time.perf_counter()
        fn(); self.sync()
        return round(time.perf_counter() - t0, 3), self.peak_gib()

    def save(self):
        tmp = self.json_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.results, indent=1)); os.replace(tmp, self.json_path)

    def run(self, name, fn):
        print(f"== {name}", flush=True)
        t0 = time.perf_counter()
        try: res = fn()
        except Exception as e:
            traceback.print_exc()
            res = dict(error=f"{type(e).__name__}: {e}"[:2000])
        res["section_s"] = round(time.perf_counter() - t0, 1)
        self.results["sections"][name] = res
        self.save()
        print(json.dumps(res, indent=1), flush=True)
        self.free()

    def free(self):
        gc.collect()
        if self.gpu: self.torch.cuda.empty_cache()

    # ---------------------------------------------------------------- models and inputs

    def transformer(self):
        from dreamfuse_lit.core.configs import random_flux_transformer
        return random_flux_transformer("dev", torch_dtype=self.dtype, device=self.dev, seed=0, **self.S["model"])

    def inputs(self, model, side, seed=0):
        "Packed target, loser, two conditions, text and ids for a side x side image (16 pixels per token)."
        import torch
        from dreamfuse_lit.dreamfuse.positions import image_ids
        g = torch.Generator(self.dev).manual_seed(seed)
        cfg, h, L = model.config, side // 16, self.S["text_len"]
        ids = image_ids(h, h).to(self.dev)
        tok = lambda: self.rnd(1, h * h, cfg.in_channels, g=g)
        return dict(x0=tok(), x1=tok(), noise=tok(), conds=(tok(), tok()), cond_ids=(ids, image_ids(h, h, offset=(0., h)).to(self.dev)),
                    ids=ids, emb=self.rnd(1, L, cfg.joint_attention_dim, g=g), pooled=self.rnd(1, cfg.pooled_projection_dim, g=g),
                    txt_ids=torch.zeros(L, 3, device=self.dev), t=torch.full((1,), .5, device=self.dev),
                    guidance=torch.full((1,), 3.5, device=self.dev), box=(side / 4, side / 4, side / 2, side / 2), hw=(side, side))

    # ---------------------------------------------------------------- 1. equivalence

    def equivalence(self):
        import torch
        from dreamfuse_lit.dreamfuse.dit import dreamfuse_forward, add_image_tags
        model = self.transformer().eval()
        x = self.inputs(model, self.S["sides"][0])
        text = dict(encoder_hidden_states=x["emb"], txt_ids=x["txt_ids"], pooled_projections=x["pooled"], guidance=x["guidance"])
        compare = lambda a, b: dict(max_abs=float((a.float() - b.float()).abs().max()),
                                    rel=float((a.float() - b.float()).norm() / b.float().norm()))
        with torch.no_grad():
            stock = model(hidden_states=x["noise"], img_ids=x["ids"], timestep=x["t"], return_dict=False, **text)[0]
            ours = dreamfuse_forward(model, x["noise"], x["ids"], timestep=x["t"], **text)
            add_image_tags(model)  # zero tags: with a shared timestep the conditions are plain extra tokens
            model.image_tags.to(self.dev, self.dtype)
            seq = torch.cat([x["noise"], *x["conds"]], 1)
            stock_c = model(hidden_states=seq, img_ids=torch.cat([x["ids"], *x["cond_ids"]]), timestep=x["t"], return_dict=False, **text)[0]
            ours_c = dreamfuse_forward(model, x["noise"], x["ids"], timestep=x["t"], cond_states=x["conds"], cond_ids=x["cond_ids"],
                                       cond_timestep=None, **text)
        res = dict(no_conditions=compare(ours, stock), two_conditions=compare(ours_c, stock_c[:, :x["noise"].shape[1]]))
        res["ok"] = all(r["rel"] <= 1e-2 for r in res.values())  # bf16 rounding; the same kernels give 0
        del model
        return res

    # ---------------------------------------------------------------- 2. training steps

    def training(self):
        import torch
        from peft import LoraConfig
        from diffusers.training_utils import cast_training_params
        from dreamfuse_lit.dreamfuse.dit import add_image_tags
        from dreamfuse_lit.dreamfuse.flow import flow_matching_loss
        from dreamfuse_lit.dreamfuse.pipeline import save_dreamfuse_lora
        from dreamfuse_lit.dreamfuse.ldpo_task import add_ldpo_adapters, ldpo_step_loss
        res, stage1 = {}, Path(tempfile.mkdtemp(prefix="gpu_check_stage1_"))
        for variant in ("sft", "ldpo_joint", "ldpo_two_pass"):
            model = self.transformer()
            if variant == "sft":
                add_image_tags(model); model.image_tags.to(self.dev, self.dtype)
                model.requires_grad_(False)
                model.add_adapter(LoraConfig(**LORA)); model.image_tags.requires_grad_(True)
            else: add_ldpo_adapters(model, stage1)
            cast_training_params(model, torch.float32)
            model.enable_gradient_checkpointing(); model.train()
            params = [p for p in model.parameters() if p.requires_grad]
            opt = torch.optim.AdamW(params, lr=1e-4)
            for side in self.S["sides"]:
                x = self.inputs(model, side)
                kw = dict(cond_states=x["conds"], cond_ids=x["cond_ids"], guidance=x["guidance"])
                def step():
                    with torch.autocast(self.dev, dtype=self.dtype):
                        if variant == "sft":
                            loss = flow_matching_loss(model, x["x0"], x["ids"], x["t"], x["noise"], encoder_hidden_states=x["emb"],
                                                      txt_ids=x["txt_ids"], pooled_projections=x["pooled"], cond_timestep=0., **kw)
                            loss.backward()
                        else:
                            out = ldpo_step_loss(model, x["x0"], x["x1"], x["ids"], x["box"], x["hw"], x["emb"], x["pooled"], x["txt_ids"],
                                                 p=0., noise=x["noise"], t=x["t"], backward=variant[5:], **kw)
                            if variant == "ldpo_joint": out[0].backward()
                            else:
                                for one_branch in out[2]: one_branch().backward()
                            loss = out[0]
                    opt.step(); opt.zero_grad(set_to_none=True)
                    step.loss = float(loss)
                if not self.dry: self.timed(step)  # warm-up: kernels, allocator, AdamW state
                sec, peak = self.timed(step)
                res[f"{variant}_{side}"] = dict(s_per_step=sec, peak_gib=peak, loss=round(step.loss, 5))
                print(f"{variant} {side}^2: {sec:.2f} s/step, peak {peak} GiB", flush=True)
            if variant == "sft": save_dreamfuse_lora(model, stage1)
            del model, opt, params
            self.free()
        if self.gpu:
            for side in self.S["sides"]:
                sft = res[f"sft_{side}"]
                for v in ("ldpo_joint", "ldpo_two_pass"):
                    r = res[f"{v}_{side}"]
                    r["time_vs_sft"], r["memory_vs_sft"] = round(r["s_per_step"] / sft["s_per_step"], 2), round(r["peak_gib"] / sft["peak_gib"], 2)
        return res

    # ---------------------------------------------------------------- 3. pipeline

    def pipeline(self):
        import numpy as np, torch
        from PIL import Image
        from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler
        from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel
        from dreamfuse_lit.core.configs import flux_vae_config, tiny_clip_tokenizer, tiny_t5_tokenizer, tiny_config, _default_dtype
        from dreamfuse_lit.dreamfuse.dit import add_image_tags
        from dreamfuse_lit.dreamfuse.pipeline import DreamFusePipeline
        tok, tok2 = tiny_clip_tokenizer(), tiny_t5_tokenizer()
        torch.manual_seed(0)
        with _default_dtype(self.dtype), torch.device(self.dev):
            vae = AutoencoderKL(**flux_vae_config(self.S["vae"]))
            te = CLIPTextModel(CLIPTextConfig(vocab_size=49408, max_position_embeddings=77, bos_token_id=tok.bos_token_id,
                                              eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, **self.S["clip"]))
            te2 = T5EncoderModel(T5Config(vocab_size=32128, feed_forward_proj="gated-gelu", **self.S["t5"]))
        transformer = self.transformer()
        add_image_tags(transformer); transformer.image_tags.to(self.dev, self.dtype)
        pipe = DreamFusePipeline(transformer=transformer, vae=vae, text_encoder=te, tokenizer=tok, text_encoder_2=te2, tokenizer_2=tok2,
                                 scheduler=FlowMatchEulerDiscreteScheduler(**tiny_config("flux")["scheduler"]))
        pipe.set_progress_bar_config(disable=True)
        side, rng = self.S["pipe_side"], np.random.default_rng(0)
        fg = Image.fromarray(rng.integers(0, 255, (side // 2, side // 2, 4), dtype=np.uint8), "RGBA")
        bg = Image.fromarray(rng.integers(0, 255, (side, side, 3), dtype=np.uint8))
        call = lambda steps=self.S["pipe_steps"]: pipe(fg, bg, (side / 4, side / 4, 3 * side / 4, 3 * side / 4), num_inference_steps=steps,
                            height=side, width=side, generator=torch.Generator().manual_seed(0), max_sequence_length=self.S["text_len"],
                            output_type="np")
        res = {}
        if not self.dry: call(1)  # warm-up: kernels, allocator
        sec, peak = self.timed(call)
        res["on_device"] = dict(s_per_image=sec, peak_gib=peak)
        if self.gpu:
            try:
                calls = {"n": 0}  # do accelerate's offload hooks fire? count the transformer's pre-forward hook
                pipe.enable_model_cpu_offload()
                hook = pipe.transformer._hf_hook
                pre = hook.pre_forward
                def counted(*a, **k): calls["n"] += 1; return pre(*a, **k)
                hook.pre_forward = counted
                call(1)  # one step first: without its hooks firing the transformer would stay on the CPU for 28 steps
                if calls["n"] == 0: res["model_cpu_offload"] = dict(error="the transformer's offload hook never fired: it stays on the CPU")
                else:
                    sec, peak = self.timed(call)
                    res["model_cpu_offload"] = dict(s_per_image=sec, peak_gib=peak, transformer_hook_calls=calls["n"])
            except Exception as e:  # keep the on-device figures
                traceback.print_exc(); res["model_cpu_offload"] = dict(error=f"{type(e).__name__}: {e}"[:1000])
        else: res["model_cpu_offload"] = dict(skipped="needs an accelerator (diffusers offloads to CPU from a GPU)")
        res["side"], res["steps"] = side, self.S["pipe_steps"]
        del pipe, transformer, vae, te, te2
        return res

    # ---------------------------------------------------------------- 4. ComFusion vs DreamBooth

    def comfusion(self):
        cmd = [sys.executable, str(HERE / "comfusion_step.py"), "--variants", "dreambooth,comfusion", "--resolution",
               str(self.S["sd_resolution"]), "--bf16", "--device", "cuda" if self.gpu else "cpu", *self.S["comfusion"]]
        if self.gpu: cmd.append("--full")
        out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        if out.returncode: raise RuntimeError(f"comfusion_step.py exited with {out.returncode}: {out.stderr[-1500:]}")
        print(out.stdout, flush=True)
        res = {k: float(v) for k, v in re.findall(r"^(\w+_ratio_\w+): ([\d.]+)$", out.stdout, re.M)}
        rows = re.findall(r"^\s+(dreambooth|comfusion): ([\d.]+) s/step, ([\d.]+) GFLOP/step.*peak (\d+) MiB", out.stdout, re.M)
        for v, s, gf, mb in rows: res[v] = dict(s_per_step=float(s), gflop_per_step=float(gf), peak_gib=round(float(mb) / 1024, 2))
        res["command"] = " ".join(cmd[1:])
        return res

    # ---------------------------------------------------------------- 5. sharded training

    def fsdp(self):
        import dataclasses
        from dreamfuse_lit.core.training import TrainConfig, save_config, launch, fsdp_config, find_checkpoint
        d = Path(tempfile.mkdtemp(prefix="gpu_check_fsdp_"))
        cfg = TrainConfig(method="sft", pretrained="tiny", output_dir=str(d / "run"), steps=4, checkpoint_every=2, lr=1e-3,
                          report_to="none", mixed_precision="bf16" if self.gpu else "no", accelerate_config=str(fsdp_config(d / "fsdp.yaml")),
                          task=dict(scales=(64,), max_sequence_length=16, sample_steps=1, sample_count=1, cache_dir=str(d / "latents")))
        lines, t0 = [], time.perf_counter()
        launch(save_config(cfg, d / "first.yaml"), 1, cfg.mixed_precision, log=lines.append)
        first = json.loads((find_checkpoint(d / "run", 1) / "checkpoint.json").read_text())
        launch(save_config(dataclasses.replace(cfg, steps=6), d / "resumed.yaml"), 1, cfg.mixed_precision, log=lines.append)
        log = "\n".join(lines)
        res = dict(sharded_checkpoint=first.get("sharded"), state_files=sorted(n for n in first["files"] if n.startswith("state/"))[:6],
                   resumed_at_4="at step 4" in log, final=sorted(p.name for p in (d / "run" / "final").iterdir()), s=round(time.perf_counter() - t0, 1))
        res["ok"] = res["resumed_at_4"] and bool(res["final"]) and res["sharded_checkpoint"] == self.gpu
        if not res["ok"]: res["log_tail"] = log[-3000:]
        return res

    # ---------------------------------------------------------------- the table

    def table(self) -> str:
        S, rows = self.results["sections"], []
        head = f"gpu_check on {self.device_name} ({self.results['started']}, torch {self.results['torch']})"
        rows.append(f"**{head}**\n\n| check | result |\n|---|---|")
        if (e := S.get("equivalence")) and "error" not in e:
            for k in ("no_conditions", "two_conditions"):
                rows.append(f"| dreamfuse_forward vs stock forward, bf16, {k.replace('_', ' ')} | rel {e[k]['rel']:.2e}, max abs {e[k]['max_abs']:.2e} |")
        if (t := S.get("training")) and "error" not in t:
            for k, r in t.items():
                if isinstance(r, dict): rows.append(f"| {k.replace('_', ' ')}^2 step (checkpointing, 2 conditions) | {r['s_per_step']:.2f} s/step, peak {r['peak_gib']} GiB"
                                                    + (f" ({r['time_vs_sft']}x SFT time, {r['memory_vs_sft']}x SFT memory)" if "time_vs_sft" in r else "") + " |")
        if (p := S.get("pipeline")) and "error" not in p:
            for k in ("on_device", "model_cpu_offload"):
                r = p[k]
                rows.append(f"| DreamFusePipeline {p['steps']} steps at {p['side']}^2, {k.replace('_', ' ')} | "
                            + (r.get("skipped") or r.get("error") or f"{r['s_per_image']:.2f} s/image, peak {r['peak_gib']} GiB") + " |")
        if (c := S.get("comfusion")) and "error" not in c:
            for v in ("dreambooth", "comfusion"):
                if v in c: rows.append(f"| SD 1.5 {v} step at {self.S['sd_resolution']}^2 | {c[v]['s_per_step']:.2f} s/step, {c[v]['gflop_per_step']:.4g} GFLOP, peak {c[v]['peak_gib']} GiB |")
            for k in ("time_ratio_comfusion_vs_dreambooth", "flop_ratio_comfusion_vs_dreambooth"):
                if k in c: rows.append(f"| {k} | {c[k]:.2f} |")
        if (f := S.get("fsdp")) and "error" not in f:
            rows.append(f"| FSDP2 (1 process): sharded checkpoint {f['sharded_checkpoint']}, resumed {f['resumed_at_4']}, final {f['final']} | {'ok' if f['ok'] else 'FAILED'} |")
        for name, r in S.items():
            if "error" in r: rows.append(f"| {name} | FAILED: {r['error'][:200]} |")
        walls = ", ".join(f"{k} {r['section_s']} s" for k, r in S.items())
        rows.append(f"| sections' wall time | {walls} |")
        return "\n".join(rows) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dry-run", action="store_true", help="the same code on CPU with small shapes")
    ap.add_argument("--out", help="results folder (default: bench/results; with --dry-run a temporary folder)")
    ap.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated subset of {list(SECTIONS)}")
    a = ap.parse_args(argv)
    sections = [s.strip() for s in a.sections.split(",") if s.strip()]
    if bad := [s for s in sections if s not in SECTIONS]: ap.error(f"--sections: unknown {bad}; choose from {list(SECTIONS)}")
    out = Path(a.out) if a.out else Path(tempfile.mkdtemp(prefix="gpu_check_")) if a.dry_run else HERE / "results"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    check, t0 = Check(a.dry_run, out), time.perf_counter()
    if a.dry_run: check.torch.set_num_threads(min(2, os.cpu_count() or 1))
    for s in sections: check.run(s, getattr(check, s))
    check.results["total_s"] = round(time.perf_counter() - t0, 1)
    check.save()
    table = check.table()
    check.md_path.write_text(table)
    print(table + f"\nresults: {check.json_path}\ntable: {check.md_path}\ntotal {check.results['total_s']} s", flush=True)
    return 1 if any("error" in r or r.get("ok") is False for r in check.results["sections"].values()) else 0


if __name__ == "__main__": sys.exit(main())

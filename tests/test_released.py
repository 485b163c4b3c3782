"The released DreamFuse weights and recipe (issue #16): their ids, their adapter layout in both directions, the presets."
import inspect, json
from pathlib import Path
from unittest import mock
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import load_file
from dreamfuse_lit.core.zoo import load_flux_transformer
from dreamfuse_lit.dreamfuse.positions import fusion_ids, image_ids
from dreamfuse_lit.dreamfuse.dit import dreamfuse_forward
from dreamfuse_lit.dreamfuse.conditions import prepare_fusion
from dreamfuse_lit.dreamfuse.released import (PIPELINE_PRESETS, TRAIN_PRESETS, RELEASED_TAGS, PEFT_CONFIG_NAME, released_bucket,
                                              lora_folder)
from dreamfuse_lit.dreamfuse.pipeline import DreamFusePipeline, save_dreamfuse_lora, LORA_WEIGHT_NAME, IMAGE_TAGS_NAME
from dreamfuse_lit.world.triplets import load_triplets

TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]

# ---- their id construction, transcribed independently: the id grid warped as a picture -------------------------------

def transcribed_ids(h, w, src_box, dst_box, offset_w=0.):
    """The released foreground ids: box-to-box scale and translation (divided by 16) rewritten for `affine_grid`
    (align_corners=False) and sampled by `grid_sample` (align_corners=True, bilinear, zero padding)."""
    (sx0, sy0, sx1, sy1), (dx0, dy0, dx1, dy1) = src_box, dst_box
    a, e = (dx1 - dx0) / (sx1 - sx0), (dy1 - dy0) / (sy1 - sy0)
    tx, ty = (dx0 - sx0 * a) / 16, (dy0 - sy0 * e) / 16
    theta = torch.tensor([[[a, 0., a + 2 * tx / (w - 1) - 1], [0., e, e + 2 * ty / (h - 1) - 1]]], dtype=torch.float32)
    grid = torch.zeros(h, w, 3)
    grid[..., 1] = torch.arange(h)[:, None]
    grid[..., 2] = torch.arange(w)[None, :] + offset_w
    sample_at = F.affine_grid(theta, (1, 3, h, w), align_corners=False)
    out = F.grid_sample(grid.permute(2, 0, 1)[None], sample_at, mode="bilinear", padding_mode="zeros", align_corners=True)
    return out[0].permute(1, 2, 0).reshape(-1, 3)

CASES = [(32, 32, (0, 0, 512, 512), (0, 0, 512, 512)),             # their identity
         (32, 32, (128, 128, 384, 384), (52, 228, 180, 356)),       # shrunk into the lower left
         (32, 32, (192, 192, 320, 320), (32, 256, 288, 512)),       # enlarged: most tokens leave the frame
         (24, 40, (100, 40, 230, 300), (300, 10, 560, 310)),        # a 640x384 bucket, aspect changed
         (28, 36, (17, 33, 301, 260), (250, 100, 570, 440)),        # boxes of any pixel size
         (9, 11, (40, 30, 130, 110), (10, 60, 70, 130)),
         (32, 32, (0, 0, 512, 512), (-300, 700, 200, 900))]         # placed entirely off the frame

@pytest.mark.parametrize("h,w,src,dst", CASES)
def test_released_ids_equal_the_transcription(h, w, src, dst):
    ours = fusion_ids(h, w, "shared", src, dst, affine="released")
    torch.testing.assert_close(ours[1], transcribed_ids(h, w, src, dst), atol=1e-4, rtol=1e-5)
    assert torch.equal(ours[0], image_ids(h, w)) and torch.equal(ours[2], image_ids(h, w))

@pytest.mark.parametrize("h,w,src,dst", CASES[1:4])
def test_released_ids_with_their_column_offset(h, w, src, dst):
    "Their offsets shift the grid's columns by a multiple of the width before it is warped (off-frame ids stay 0)."
    ours = fusion_ids(h, w, [(0, 0), (0, w), (0, 2 * w)], src, dst, affine="released")[1]
    torch.testing.assert_close(ours, transcribed_ids(h, w, src, dst, offset_w=w), atol=1e-4, rtol=1e-5)

def test_released_ids_off_frame_are_zero_and_exact_ids_are_not():
    h = w = 32
    exact, released = (fusion_ids(h, w, "shared", (192, 192, 320, 320), (32, 256, 288, 512), affine=a)[1] for a in ("exact", "released"))
    outside = ((exact[:, 1:] < -2) | (exact[:, 1:] > 33)).any(1)
    assert outside.sum() > 200
    assert (released[outside] == 0).all() and (exact[outside] != 0).any(1).all()

# ---- their adapter layout --------------------------------------------------------------------------------------------

def released_like(seed=0):
    "A tiny transformer with the released tags module, LoRA and tags as their training makes them, random values."
    t = load_flux_transformer("tiny")
    t.image_tag_embeddings = torch.nn.Embedding(3, t.inner_dim)
    pm = get_peft_model(t, LoraConfig(r=4, lora_alpha=8, init_lora_weights="gaussian", target_modules=TARGETS, modules_to_save=[RELEASED_TAGS]))
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in pm.named_parameters():
            if "lora_" in n or "modules_to_save" in n: p.copy_(torch.randn(p.shape, generator=g) * .3)
    return pm

def forward(transformer, seed=1, n=12):
    "`dreamfuse_forward` of `transformer` on fixed random inputs: target, two conditions, text."
    g = torch.Generator().manual_seed(seed)
    c, d = transformer.config.in_channels, transformer.config.joint_attention_dim
    x, fg, bg = (torch.randn(1, n, c, generator=g) for _ in range(3))
    ids = image_ids(3, 4)
    kw = dict(encoder_hidden_states=torch.randn(1, 5, d, generator=g), txt_ids=torch.zeros(5, 3),
              pooled_projections=torch.randn(1, transformer.config.pooled_projection_dim, generator=g), timestep=torch.tensor([.7]),
              guidance=torch.tensor([3.5]) if transformer.config.guidance_embeds else None)
    with torch.no_grad():
        return dreamfuse_forward(transformer, x, ids, cond_states=(fg, bg), cond_ids=fusion_ids(3, 4, "shared", (0, 0, 32, 32), (8, 8, 64, 48), affine="released")[1:],
                                 cond_timestep=0., **kw)

def their_output(pm):
    "The PeftModel's own output: its base model with the adapter active, the tags read through peft's wrapper."
    base = pm.base_model.model
    base.image_tags = base.image_tag_embeddings  # dreamfuse_forward reads the tags under our name
    try: return forward(base)
    finally: del base.image_tags

def pipeline():
    p = DreamFusePipeline.from_pretrained("tiny")
    p.set_progress_bar_config(disable=True)
    return p

def test_peft_saved_adapter_loads_and_matches_the_peft_model(tmp_path):
    pm = released_like()
    pm.save_pretrained(tmp_path / "released")
    assert sorted(p.name for p in (tmp_path / "released").iterdir() if p.suffix != ".md") == [PEFT_CONFIG_NAME, "adapter_model.safetensors"]
    pipe = pipeline()
    pipe.load_dreamfuse_lora(tmp_path / "released")
    assert pipe.preset == "released"
    ours, theirs = forward(pipe.transformer), their_output(pm)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)
    assert (ours - forward(load_flux_transformer("tiny"))).abs().max() > 1e-3  # the adapter matters

def test_round_trip_ours_theirs_ours(tmp_path):
    pm = released_like(seed=3)
    pm.save_pretrained(tmp_path / "theirs-0")
    first = pipeline(); first.load_dreamfuse_lora(tmp_path / "theirs-0")
    save_dreamfuse_lora(first.transformer, tmp_path / "ours-1", adapter_name="default_0")
    second = pipeline(); second.load_dreamfuse_lora(tmp_path / "ours-1")
    assert second.preset == "default"
    save_dreamfuse_lora(second.transformer, tmp_path / "theirs-2", adapter_name="default_0", layout="peft")
    third = pipeline(); third.load_dreamfuse_lora(tmp_path / "theirs-2")
    save_dreamfuse_lora(third.transformer, tmp_path / "ours-3", adapter_name="default_0")
    for name in (LORA_WEIGHT_NAME, IMAGE_TAGS_NAME):
        a, b = load_file(tmp_path / "ours-1" / name), load_file(tmp_path / "ours-3" / name)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    theirs_0, theirs_2 = load_file(tmp_path / "theirs-0" / "adapter_model.safetensors"), load_file(tmp_path / "theirs-2" / "adapter_model.safetensors")
    assert theirs_0.keys() == theirs_2.keys() and all(torch.equal(theirs_0[k], theirs_2[k]) for k in theirs_0)
    # what we write in their layout is what their code loads: a PeftModel on their transformer, same output
    t = load_flux_transformer("tiny"); t.image_tag_embeddings = torch.nn.Embedding(3, t.inner_dim)
    reloaded = PeftModel.from_pretrained(t, tmp_path / "theirs-2")
    assert reloaded.peft_config["default"].lora_alpha == 8
    torch.testing.assert_close(their_output(reloaded), their_output(pm), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(forward(third.transformer), their_output(pm), atol=1e-5, rtol=1e-5)

def test_a_hub_id_downloads_only_the_adapter(tmp_path):
    released_like().save_pretrained(tmp_path / "snapshot")
    with mock.patch("huggingface_hub.snapshot_download", return_value=str(tmp_path / "snapshot")) as download:
        pipe = pipeline()
        pipe.load_dreamfuse_lora("LL3RD/DreamFuse")
    assert download.call_args.args == ("LL3RD/DreamFuse",)
    assert set(download.call_args.kwargs["allow_patterns"]) == {"*.json", "*.safetensors"}
    assert pipe.preset == "released"
    with mock.patch("huggingface_hub.snapshot_download", side_effect=OSError("offline")):
        with pytest.raises(FileNotFoundError, match="'LL3RD/DreamFuse': not a local folder"): lora_folder("LL3RD/DreamFuse")

def test_load_refuses_an_unknown_preset_before_loading(tmp_path):
    released_like().save_pretrained(tmp_path / "r")
    pipe = pipeline()
    with pytest.raises(ValueError, match="preset='fast'"): pipe.load_dreamfuse_lora(tmp_path / "r", preset="fast")
    assert not getattr(pipe.transformer, "peft_config", None)
    pipe.load_dreamfuse_lora(tmp_path / "r", preset="default")
    assert pipe.preset == "default"

# ---- the released preset of the pipeline: its recipe's output path ------------------------------------------------------

def recorded(pipe, **kw):
    spy = mock.Mock(wraps=dreamfuse_forward)
    with mock.patch.dict(inspect.unwrap(DreamFusePipeline.__call__).__globals__, dreamfuse_forward=spy): out = pipe(**kw)
    return out, spy.call_args_list

def test_released_preset_runs_their_recipe(tmp_path):
    row = load_triplets()[0]
    rgba = Image.fromarray(row["foreground"]); rgba.putalpha(Image.fromarray(row["foreground_mask"]))
    released_like().save_pretrained(tmp_path / "r")
    pipe = pipeline(); pipe.load_dreamfuse_lora(tmp_path / "r")
    bg = row["background"]
    kw = dict(foreground=rgba, background=bg, box=row["box"], num_inference_steps=2, generator=torch.Generator().manual_seed(0))
    out, calls = recorded(pipe, **kw, text_strength=2)
    assert out.images[0].size == (bg.shape[1], bg.shape[0])  # resized back to the background
    w, h = released_bucket(bg.shape[1], bg.shape[0])
    fusion = prepare_fusion(rgba, bg, row["box"], height=h, width=w, affine="released")
    args, kwargs = calls[0]
    assert torch.equal(args[2], image_ids(h // 16, w // 16))
    assert torch.equal(kwargs["cond_ids"][0], fusion.position_ids()[1])
    assert torch.equal(kwargs["cond_ids"][0], fusion_ids(h // 16, w // 16, "shared", fusion.src_box, fusion.dst_box, affine="released")[1])
    assert kwargs["encoder_hidden_states"].shape[1] == 2 * 256 and kwargs["txt_ids"].shape[0] == 2 * 256
    # a call's own arguments win over the preset
    out, calls = recorded(pipe, **kw | dict(generator=torch.Generator().manual_seed(0)), preset="default", output_type="np")
    assert out.images.shape == (1, bg.shape[0], bg.shape[1], 3)
    assert calls[0].kwargs["encoder_hidden_states"].shape[1] == 512
    assert torch.equal(calls[0].kwargs["cond_ids"][0], prepare_fusion(rgba, bg, row["box"]).position_ids()[1])
    out, _ = recorded(pipe, **kw | dict(generator=torch.Generator().manual_seed(0)), output_type="pt", height=96, width=128)
    assert out.images.shape == (1, 3, bg.shape[0], bg.shape[1])

def test_presets_name_real_options():
    from dataclasses import fields
    from dreamfuse_lit.core.training import TrainConfig
    from dreamfuse_lit.dreamfuse.sft import SFTTask
    assert set(PIPELINE_PRESETS["default"]) == set(PIPELINE_PRESETS["released"])
    from dreamfuse_lit.core.training import make_optimizer
    preset = TRAIN_PRESETS["released"]
    group = make_optimizer([torch.nn.Parameter(torch.zeros(2))], TrainConfig(**preset["config"])).param_groups[0]
    assert group["use_bias_correction"] and group["safeguard_warmup"]  # Prodigy's own options, as the released run sets them
    SFTTask(**preset["task"])
    assert set(preset["task"]) <= {f.name for f in fields(SFTTask)}

def test_released_training_preset_trains_the_tiny_model(tmp_path):
    "Two steps of the released task options on CPU: released buckets, ids and timesteps, bf16 LoRA under bf16 precision."
    from dreamfuse_lit.core.training import TrainConfig, train
    task = TRAIN_PRESETS["released"]["task"] | dict(scales=(128,), max_sequence_length=32, sample_steps=1, sample_count=1,
                                                    cache_dir=str(tmp_path / "latents"))
    final = train(TrainConfig(method="sft", pretrained="tiny", output_dir=str(tmp_path / "run"), steps=2, lr=1e-3, report_to="none",
                              mixed_precision="bf16", max_grad_norm=1000., checkpoint_every=2, task=task))
    lora = load_file(final / LORA_WEIGHT_NAME)
    assert {v.dtype for v in lora.values()} == {torch.bfloat16}
    assert [json.loads(l)["step"] for l in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()] == [1, 2]

"""The DreamFuse tasks and pipeline on a FLUX whose VAE downsamples 4× (the pocket models'), not 8×:
a token is then 8 pixels, and every position id, LDPO mask and joint stream must be built with that, not with FLUX's 16."""
import torch
from PIL import Image
from dreamfuse_lit.core.files import data_path
from dreamfuse_lit.core.training import TrainConfig, train
from dreamfuse_lit.datagen.pipeline import DataGenPipeline
from dreamfuse_lit.dreamfuse.pipeline import DreamFusePipeline
from dreamfuse_lit.pocket.models import POCKET_SIZE, new_pocket_pipeline
from dreamfuse_lit.world.manifest import load_row_images, read_manifest
from dreamfuse_lit.world.procedural import prompt_words

MANIFEST = data_path("demo", "manifest.jsonl")


def test_four_times_vae(tmp_path):
    base = tmp_path / "base"
    new_pocket_pipeline(prompt_words(read_manifest(MANIFEST))).save_pretrained(base)
    task = dict(scales=(POCKET_SIZE,), max_sequence_length=16, sample_steps=1, sample_count=1, cache_dir=str(tmp_path / "cache"))
    kw = dict(pretrained=str(base), data=str(MANIFEST), steps=2, batch_size=2, checkpoint_every=2, validate_every=0, report_to="none")
    stage1 = train(TrainConfig(method="sft", output_dir=str(tmp_path / "sft"), task=task, **kw))
    ldpo = train(TrainConfig(method="ldpo", output_dir=str(tmp_path / "ldpo"), task=task | dict(stage1_lora=str(stage1)), **kw))
    pipe = DreamFusePipeline.from_pretrained(str(base))
    assert pipe.vae_scale_factor == 4
    pipe.load_dreamfuse_lora(str(ldpo))
    row = read_manifest(MANIFEST)[0]
    ims = {k: Image.fromarray(v) for k, v in load_row_images(row, MANIFEST).items()}
    out = pipe(ims["foreground"], ims["background"], row["box"], mask=ims["foreground_mask"], prompt=row["prompt"],
               height=POCKET_SIZE, width=POCKET_SIZE, num_inference_steps=2, max_sequence_length=16,
               generator=torch.Generator().manual_seed(0)).images[0]
    assert out.size == (POCKET_SIZE, POCKET_SIZE)
    joint = DataGenPipeline.from_pretrained(str(base))
    res = joint(foreground_prompt="a red ball", background_prompt="a plain room", prompt="a red ball in a plain room",
                height=POCKET_SIZE, width=POCKET_SIZE, num_inference_steps=2, max_sequence_length=16, generator=torch.Generator().manual_seed(0))
    assert res.fused[0].size == (POCKET_SIZE, POCKET_SIZE)

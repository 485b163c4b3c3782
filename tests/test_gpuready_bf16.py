"Under bf16 autocast the LDPO policy and its reference run at one precision: at policy == reference the loss is log 2, as in fp32."
import math
from types import SimpleNamespace
import pytest, torch
from dreamfuse_lit.core.training import TrainConfig
from dreamfuse_lit.dreamfuse.positions import image_ids
from dreamfuse_lit.dreamfuse.ldpo_task import LDPOTask, ldpo_step_loss
from test_twopass import make_stage1  # the same stand-in stage-1 export


@pytest.fixture(scope="module")
def stage1_dir(tmp_path_factory):
    "A stand-in stage-1 result: LoRA and image tags with random non-zero values."
    return make_stage1(tmp_path_factory.mktemp("stage1"))


@pytest.mark.parametrize("precision", ["no", "bf16"])
def test_ldpo_at_reference_is_log2(stage1_dir, tmp_path, precision):
    "The transformer as the LDPO task builds it (weights in the run's dtype, trained parameters cast to float32), one step's loss."
    cfg = TrainConfig(method="ldpo", pretrained="tiny", output_dir=str(tmp_path), mixed_precision=precision, report_to="none",
                      gradient_checkpointing=True, task=dict(stage1_lora=str(stage1_dir)))
    acc = SimpleNamespace(mixed_precision=precision, device=torch.device("cpu"))  # what `build` reads of the engine's Accelerator
    transformer = LDPOTask(stage1_lora=str(stage1_dir)).build(cfg, acc).transformer.train()
    assert {p.dtype for p in transformer.parameters() if p.requires_grad} == {torch.float32}
    h, w, C = 4, 6, transformer.config.in_channels
    g = torch.Generator().manual_seed(1)
    winner, loser, fg, bg = (torch.randn(2, h * w, C, generator=g) for _ in range(4))
    ids = image_ids(h, w)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):  # as `accelerator.autocast()` does
        loss, stats = ldpo_step_loss(transformer, winner, loser, ids, (16, 16, 48, 48), (16 * h, 16 * w),
                                     torch.randn(2, 8, 32, generator=g), torch.randn(2, 32, generator=g), torch.zeros(8, 3),
                                     guidance=1., cond_states=(fg, bg), cond_ids=(ids, ids), p=0., beta=5000.,
                                     generator=torch.Generator().manual_seed(2))
    assert loss.item() == pytest.approx(math.log(2), abs=1e-6), (precision, loss.item(), stats)
    assert stats["margin"].item() == 0, stats

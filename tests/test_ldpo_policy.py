"""`add_ldpo_adapters(..., policy_dir=)`: the reference holds stage 1, the policy another export (a trained LDPO to measure)."""
import torch
from peft.utils import get_peft_model_state_dict
from safetensors.torch import load_file, save_file
from dreamfuse_lit.core.zoo import load_flux_transformer
from dreamfuse_lit.dreamfuse.ldpo_task import add_ldpo_adapters
from dreamfuse_lit.dreamfuse.pipeline import IMAGE_TAGS_NAME
from test_twopass import make_stage1


def test_policy_from_another_export(tmp_path):
    stage1 = make_stage1(tmp_path / "stage1")
    other = tmp_path / "other"; make_stage1(other)
    for f in other.glob("*.safetensors"): save_file({k: v + 1 for k, v in load_file(f).items()}, f)  # same layout, other values
    tr = add_ldpo_adapters(load_flux_transformer("tiny"), stage1, policy_dir=other)
    ref, pol = (get_peft_model_state_dict(tr, adapter_name=a) for a in ("reference", "policy"))
    assert torch.equal(ref.pop("image_tags.weight"), load_file(stage1 / IMAGE_TAGS_NAME)["weight"])
    assert torch.equal(pol.pop("image_tags.weight"), load_file(other / IMAGE_TAGS_NAME)["weight"])
    assert ref.keys() == pol.keys() and all(torch.allclose(pol[k], ref[k] + 1) for k in ref)
    same = add_ldpo_adapters(load_flux_transformer("tiny"), stage1)
    a, b = (get_peft_model_state_dict(same, adapter_name=n) for n in ("reference", "policy"))
    assert all(torch.equal(a[k], b[k]) for k in a)

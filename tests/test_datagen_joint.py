"The joint generator's contracts: every stream's target is its own noise - x0 at one timestep, the offsets' ids, the three prompts."
import json
from unittest import mock
import pytest, torch
from dreamfuse_lit.core.files import data_path
from dreamfuse_lit.datagen import streams
from dreamfuse_lit.datagen.streams import STREAMS, joint_ids, joint_loss
from dreamfuse_lit.datagen.joint import JointDataset, JointTask

def fake_forward(calls, preds):
    "A stand-in for `dreamfuse_forward` that records its arguments and returns `preds` (target, [conditions])."
    def forward(transformer, hidden_states, img_ids, encoder_hidden_states, txt_ids, pooled_projections, timestep, guidance=None, **kw):
        calls.append(dict(hidden_states=hidden_states, img_ids=img_ids, timestep=timestep, **kw))
        return preds[0], list(preds[1:])
    return forward

def test_every_stream_regresses_its_own_velocity_at_one_timestep():
    g = torch.Generator().manual_seed(0)
    x0, noise, preds = ([torch.randn(2, 6, 16, generator=g) for _ in STREAMS] for _ in range(3))
    t, calls = torch.tensor([.25, .8]), []
    with mock.patch.object(streams, "dreamfuse_forward", fake_forward(calls, preds)):
        out = joint_loss(None, x0, joint_ids(2, 3), t, noise, encoder_hidden_states=None, txt_ids=None, pooled_projections=None)
    (c,) = calls
    assert c["cond_timestep"] is None and c["return_conds"] is True and torch.equal(c["timestep"], t)
    inputs = [c["hidden_states"], *c["cond_states"]]
    for x, e, xt in zip(x0, noise, inputs): torch.testing.assert_close(xt, (1 - t[:, None, None]) * x + t[:, None, None] * e)
    for s, p, x, e in zip(STREAMS, preds, x0, noise): torch.testing.assert_close(out[f"loss_{s}"], ((p - (e - x)) ** 2).mean())
    torch.testing.assert_close(out["loss"], sum(out[f"loss_{s}"] for s in STREAMS) / 3)

@pytest.mark.parametrize("offset, columns", [("shared", [0, 0, 0]), ("side_by_side", [0, 5, 10])])
def test_the_offset_shifts_each_stream_by_its_width(offset, columns):
    ids = joint_ids(3, 5, offset)
    assert [float(i[:, 2].min()) for i in ids] == columns
    assert all(torch.equal(i[:, 1], ids[0][:, 1]) and torch.equal(i[:, 0], ids[0][:, 0]) for i in ids)
    with pytest.raises(ValueError, match="diagonal"): joint_ids(3, 5, "diagonal")

@pytest.mark.parametrize("offset", ["shared", "side_by_side"])
def test_the_task_trains_with_its_offset(offset):
    "`JointTask.loss` hands `joint_loss` the ids of its offset for the batch's bucket (latents 8×12 -> 4×6 tokens)."
    task = JointTask(offset=offset, text_dropout=0.)
    task.empty_prompt = (torch.zeros(1, 4, 8), torch.zeros(1, 8))
    batch = {f"{s}_latents": torch.randn(1, 4, 8, 12) for s in STREAMS} | {k: torch.randn(1, 4, 8) for k in ("prompt_embeds", "foreground_prompt_embeds", "background_prompt_embeds")}
    batch |= dict(pooled_prompt_embeds=torch.randn(1, 8), text_ids=torch.zeros(1, 4, 3))
    transformer = mock.Mock(device=torch.device("cpu"), dtype=torch.float32, config=mock.Mock(guidance_embeds=False))
    with mock.patch("dreamfuse_lit.datagen.joint.joint_loss") as loss:
        task.loss(transformer, batch, torch.Generator().manual_seed(0))
    (x0, ids), kw = loss.call_args[0][1:3], loss.call_args[1]
    for a, b in zip(ids, joint_ids(4, 6, offset)): assert torch.equal(a, b)
    assert kw["encoder_hidden_states"].shape == (1, 12, 8) and kw["txt_ids"].shape == (12, 3)  # three prompts joined
    assert torch.equal(kw["encoder_hidden_states"][:, 4:8], batch["foreground_prompt_embeds"])  # in stream order

def test_a_row_without_the_three_prompts_is_a_bad_row(tmp_path):
    lines = data_path("demo", "manifest.jsonl").read_text().splitlines()[:3]
    rows = [json.loads(l) for l in lines]
    for r in rows:
        for f in ("foreground", "foreground_mask", "background", "fused"): r[f] = str(data_path("demo", r[f]))
    del rows[1]["background_prompt"]
    m = tmp_path / "m.jsonl"; m.write_text("".join(json.dumps(r) + "\n" for r in rows))
    ds = JointDataset(m)
    assert len(ds) == 2 and str(ds.errors[0]) == f"{m}:2: background_prompt: expected a string (the joint generator's prompt), got None"

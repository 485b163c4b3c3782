"ComFusion in two processes: priors drawn once and shared, the fusion stream under DDP, and a resumed run that ends where an uninterrupted one does."
import json
from dreamfuse_lit.comfusion.losses import PRIOR_SCENES
from dreamfuse_lit.core.training import TrainConfig, save_config, launch

TASK = dict(scenes=PRIOR_SCENES[:2], num_priors=4, prior_steps=1, sample_steps=1, sample_scenes=["in the snow"])


def cfg(out, **kw):
    return TrainConfig(method="comfusion", pretrained="tiny", output_dir=str(out), lr=1e-4, report_to="none",
                       task={**TASK, **kw.pop("task", {})}, **kw)


def test_two_processes(tmp_path):
    "2 gloo processes: the priors are drawn once between them, and both ranks end with the same UNet and text encoder."
    c = cfg(tmp_path / "run", steps=2, checkpoint_every=2)
    lines = []
    launch(save_config(c, tmp_path / "run.yaml"), num_processes=2, log=lines.append)
    assert sum("drew 4 of 4 class-scene priors" in l for l in lines) == 1, "\n".join(lines[-30:])
    ranks = json.loads((tmp_path / "run" / "final" / "ranks.json").read_text())["weights_sha256"]
    assert len(ranks) == 2 and ranks[0] == ranks[1]
    assert (tmp_path / "run" / "final" / "unet" / "diffusion_pytorch_model.safetensors").exists()
    rows = [json.loads(l) for l in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]
    for r in rows:  # the fusion terms were computed (a skipped one is exactly 0) and enter the loss with Eq. 6's weights
        assert r["fusion_instance"] != 0 and r["fusion_scene"] != 0, r
        eq6 = r["instance"] + r["prior"] + .01 * r["fusion_instance"] + .01 * r["fusion_scene"]
        assert abs(r["loss"] - eq6) <= 1e-5 * abs(eq6), r


def test_resume_matches_straight_run(tmp_path):
    "4 steps in one go, and 2 steps then 2 more from the checkpoint, log the same losses (the priors are reused)."
    straight = cfg(tmp_path / "straight", steps=4, checkpoint_every=2)
    launch(save_config(straight, tmp_path / "straight.yaml"), log=lambda l: None)
    part = cfg(tmp_path / "part", steps=2, checkpoint_every=2)
    launch(save_config(part, tmp_path / "part.yaml"), log=lambda l: None)
    lines = []
    launch(save_config(cfg(tmp_path / "part", steps=4, checkpoint_every=2), tmp_path / "part.yaml"), log=lines.append)
    out = "\n".join(lines)
    assert "resumed from" in out and "drew 0 of 4" in out, out[-2000:]
    loss = lambda run: [json.loads(l)["loss"] for l in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]
    assert loss("straight") == loss("part")

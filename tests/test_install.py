"The built wheel is what `pip install dreamfuse_lit` gets: it must import and carry the shipped data."
import subprocess, sys, zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

def test_wheel_installs_and_imports(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(tmp_path / "wheel"), str(ROOT)], check=True)
    wheel, = (tmp_path / "wheel").glob("dreamfuse_lit-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for f in ["dreamfuse_lit/core/zoo.py", "dreamfuse_lit/world/manifest.py", "dreamfuse_lit/dreamfuse/pipeline.py",
              "dreamfuse_lit/comfusion/task.py", "dreamfuse_lit/assets/comfusion_scenes.txt",
              "dreamfuse_lit/assets/vr_questions.txt", "dreamfuse_lit/assets/demo/manifest.jsonl",
              "dreamfuse_lit/assets/pocket/flux/model_index.json", "dreamfuse_lit/assets/pocket/flux/transformer/config.json",
              "dreamfuse_lit/assets/pocket/stage1/pytorch_lora_weights.safetensors", "dreamfuse_lit/assets/pocket/runs/plan.json"]:
        assert f in names, f"{f} missing from {wheel.name}"
    assert any(n.startswith("dreamfuse_lit-") and n.endswith("entry_points.txt") for n in names)
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)], check=True)
    # Run from outside the repository with the wheel's copy first on the path: the editable install must not
    # be what gets imported.
    # every subpackage imports, and the names the README calls first come from the top level
    code = ("import dreamfuse_lit, dreamfuse_lit.core, dreamfuse_lit.world, dreamfuse_lit.dreamfuse, dreamfuse_lit.comfusion; "
            "import dreamfuse_lit.core.zoo, dreamfuse_lit.world.manifest, dreamfuse_lit.dreamfuse.ldpo_task, dreamfuse_lit.comfusion.task; "
            "from dreamfuse_lit.core.files import read_lines; "
            "from dreamfuse_lit import DreamFusePipeline, load_comfusion_pipeline, clip_t, clip_i, dino_score, vr_score; "
            "print(dreamfuse_lit.__file__); print(len(read_lines('comfusion_scenes.txt'))); "
            # the pocket models load offline from the installed package, through the zoo's names
            "pipe = DreamFusePipeline.from_pretrained('pocket'); pipe.load_dreamfuse_lora('pocket:stage1'); "
            "print(pipe.vae.config.sample_size, pipe.transformer.image_tags.weight.abs().sum().item() > 0)")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(site), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}).stdout.split()
    assert out[0].startswith(str(site)), out
    assert out[1:] == ["15", "64", "True"], out

# Two commands for a newcomer: `make test` and `make demo`. Each creates or reuses .venv first.
# TORCH_SPEC is installed only when the venv has no torch. The default pin is the CPU wheel that this
# project's CI machines serve locally; elsewhere pass e.g. TORCH_SPEC="torch --index-url
# https://download.pytorch.org/whl/cpu", or preinstall the CUDA build you want on a GPU server.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.dreamfuse_lit-installed
DEMO_STEPS ?= 40
DEMO_ITEMS ?= 16
export DEMO_METHODS := {methods: {copy-paste: copy-paste, truth: reference, stage 1: "pocket:stage1", LDPO (demo): runs/demo/ldpo/final}, rewards: ["pocket:stage1", runs/demo/ldpo/final]}
export HF_HUB_OFFLINE := 1
export PYTHONHASHSEED := 0

.PHONY: install readme test sync-check demo docs pocket gpu-check clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install -q $(TORCH_SPEC)
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

# README.md is generated from nbs/index.ipynb (nbdev-readme needs Quarto, which pip can't install offline).
readme: $(STAMP)
	$(BIN)/python tools/readme.py

# nbdev-export / nbdev-clean / readme must leave the tree as it was: the generated library and the clean
# notebooks are committed, so a change here means someone forgot to run them.
sync-check: $(STAMP)
	@before=$$(git status --porcelain --untracked-files=all; git diff); \
	$(BIN)/nbdev-export && $(BIN)/nbdev-clean && $(BIN)/python tools/readme.py; \
	after=$$(git status --porcelain --untracked-files=all; git diff); \
	if [ "$$before" != "$$after" ]; then \
	  echo "nbdev-export / nbdev-clean / make readme changed the tree: run them and commit the result."; \
	  git status --short; exit 1; fi

test: sync-check
	$(BIN)/nbdev-test --n-workers 2
	$(BIN)/python -m pytest -q --durations=12 tests

# The pocket world end to end, in under three minutes on a 2-core CPU: a short LDPO (DEMO_STEPS steps; the shipped one
# took 300) from the shipped stage 1 on 256 training triplets, then the evaluation of copy-paste, the truth, stage 1 and
# that LDPO on the first DEMO_ITEMS held-out triplets: their fusions, their table, and LDPO's implicit reward on their
# pairs. Both executed notebooks go to runs/demo/.
demo: $(STAMP)
	mkdir -p runs/demo
	$(BIN)/python -c "from dreamfuse_lit.world.procedural import render_triplets; from dreamfuse_lit.pocket.models import POCKET_SIZE; \
	render_triplets('runs/demo/train', 'train', 256, (POCKET_SIZE,) * 2, progress=False)"
	$(BIN)/papermill --cwd . nbs/train_ldpo.ipynb runs/demo/train_ldpo.ipynb -p pretrained pocket \
	  -p data runs/demo/train/manifest.jsonl -p steps $(DEMO_STEPS) -p output_dir runs/demo/ldpo
	$(BIN)/papermill --cwd . nbs/eval_dreamfuse.ipynb runs/demo/eval_dreamfuse.ipynb -p pretrained pocket \
	  -p num_samples $(DEMO_ITEMS) -p out_dir runs/demo/eval -y "$$DEMO_METHODS"
	@echo "executed notebooks: runs/demo/train_ldpo.ipynb, runs/demo/eval_dreamfuse.ipynb (fusions: runs/demo/eval/samples.png)"

# The documentation site, from the notebooks' stored outputs (nothing is executed), into _site/; view it with
# `python -m http.server -d _site`. .github/workflows/pages.yml runs the same target and publishes _site/.
docs: $(STAMP)
	$(BIN)/python tools/docs.py

# Retrain every pocket model from scratch (nbs/53_pocket_build.ipynb): seeded, and resumable by running it again; measure
# the two generators and the closed data loop (nbs/56_pocket_datagen.ipynb; its stage 1 trains 750 steps, the setting of
# the shipped record); then evaluate the models on the 256 held-out triplets (runs/pocket/eval_dreamfuse.ipynb, tables
# in runs/pocket/eval). Both results are shipped beside the models.
pocket: $(STAMP)
	$(BIN)/python -m dreamfuse_lit.pocket.build --work runs/pocket
	$(BIN)/python -m dreamfuse_lit.pocket.datagen --work runs/pocket --loop-steps 750 --install
	$(BIN)/papermill --cwd . nbs/eval_dreamfuse.ipynb runs/pocket/eval_dreamfuse.ipynb -p pretrained pocket -p out_dir runs/pocket/eval
	$(BIN)/python -c "from dreamfuse_lit.pocket.evaluate import install_eval_results; print(install_eval_results('runs/pocket/eval'))"

# The one prepared script for a lent GPU (DEVELOPERS.md): bf16 equivalence, SFT/LDPO steps, the pipeline with and without
# CPU offload, ComFusion vs DreamBooth; results in bench/results/<device>-<date>.{json,md}. GPU_CHECK_FLAGS=--dry-run
# runs the same code on CPU with small shapes.
gpu-check: $(STAMP)
	$(BIN)/python bench/gpu_check.py $(GPU_CHECK_FLAGS)

clean:
	rm -rf runs _docs _proc _site

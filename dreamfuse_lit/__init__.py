__version__ = "0.0.1"

# The names a user calls first, importable from the top level. Everything else lives in the subpackages
# `core` (files, images, models, training, judge, metrics, evaluation), `world` (the procedural scenes and
# triplets), `dreamfuse` and `comfusion`. Loaded on first use, so `import dreamfuse_lit.core.files` stays light.
_TOP = {"DreamFusePipeline": "dreamfuse.pipeline", "load_comfusion_pipeline": "comfusion.task",
        "clip_t": "core.metrics", "clip_i": "core.metrics", "dino_score": "core.metrics", "vr_score": "core.metrics"}
__all__ = list(_TOP)

def __dir__(): return sorted(list(globals()) + __all__)

def __getattr__(name):
    if name not in _TOP: raise AttributeError(f"module 'dreamfuse_lit' has no attribute {name!r}")
    from importlib import import_module
    return getattr(import_module(f"{__name__}.{_TOP[name]}"), name)

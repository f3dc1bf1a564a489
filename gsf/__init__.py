"""GSF Bench: Gate-Shift-Fuse ablations and benchmarks.

The package has no import-time side effects; the public model API is imported on first use:
``gsf.build_model``, ``gsf.create_model``, ``gsf.list_models``, ``gsf.from_authors_checkpoint``.
"""

__version__ = "0.1.0"

_LAZY = {
    "build_model": "gsf.models",
    "create_model": "gsf.models",
    "list_models": "gsf.models",
    "from_authors_checkpoint": "gsf.models",
    "VideoClassifier": "gsf.models",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'gsf' has no attribute {name!r}")


__all__ = ["__version__", *_LAZY]

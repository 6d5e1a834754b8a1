"""mdrchca: MDR-CHCA multimodal denoising recommendation, its baselines, and MMRec-compatible evaluation.

The Python API (the ``mdrchca`` command is a thin layer over it)::

    import mdrchca
    run = mdrchca.train(mdrchca.Config.load("lightgcn", overrides=["epochs=50"]), out="runs/x")
    run = mdrchca.load_run("runs/x"); run.evaluate(); run.recommend([0, 1], k=10)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mdrchca.errors import ConfigError, DataError, MdrchcaError

if TYPE_CHECKING:
    from mdrchca.config import Config
    from mdrchca.training.api import Run, load_run, resume, train

from mdrchca.version import __version__

_LAZY = {
    "Config": "mdrchca.config",
    "Run": "mdrchca.training.api",
    "train": "mdrchca.training.api",
    "resume": "mdrchca.training.api",
    "load_run": "mdrchca.training.api",
}


def __getattr__(name: str) -> Any:
    """The API's names are imported on first use, so ``import mdrchca`` stays light (no torch)."""
    if name in _LAZY:
        import importlib

        importlib.import_module("mdrchca.models")  # registers the models' options with the config layer
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mdrchca' has no attribute {name!r}")


__all__ = [
    "Config",
    "ConfigError",
    "DataError",
    "MdrchcaError",
    "Run",
    "__version__",
    "load_run",
    "resume",
    "train",
]

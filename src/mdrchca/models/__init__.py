"""Models, one file each, found by lower-case name in :data:`MODEL_REGISTRY`."""

from mdrchca.errors import ConfigError
from mdrchca.models import (  # noqa: F401  (registers the models)
    bm3,
    bpr,
    cdgcl,
    freedom,
    grcn,
    lattice,
    lightgcn,
    mdrchca,
    micro,
    mmgcn,
    slmrec,
    vbpr,
)
from mdrchca.models.base import MODEL_REGISTRY, Batch, Recommender, register


def get_model_class(name: str) -> type[Recommender]:
    """The model class registered as ``name`` (case-insensitive)."""
    import difflib

    key = name.lower()
    if key not in MODEL_REGISTRY:
        near = difflib.get_close_matches(key, list(MODEL_REGISTRY), n=1)
        hint = f"did you mean '{near[0]}'? " if near else ""
        raise ConfigError(f"unknown model '{name}'; {hint}available: {', '.join(sorted(MODEL_REGISTRY))}")
    return MODEL_REGISTRY[key]


__all__ = ["MODEL_REGISTRY", "Batch", "Recommender", "get_model_class", "register"]

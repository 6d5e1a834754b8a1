"""Checkpoints that hold only tensors and plain types, loaded without running code.

``torch.load(weights_only=True)`` refuses every pickled object but tensors, numbers, strings, ``None`` and
containers of them, so a tampered checkpoint cannot execute anything when a run is opened. The random
generator states, which Python and NumPy give as objects, are therefore stored in plain form
(:func:`rng_state`) and rebuilt on load (:func:`set_rng_state`).
"""

from __future__ import annotations

import io
import pickle
import random
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mdrchca.errors import MdrchcaError
from mdrchca.io import interrupts_held, write_bytes


class CheckpointError(MdrchcaError):
    """A checkpoint that is missing, empty, truncated, tampered with or from another model."""


def rng_state() -> dict[str, Any]:
    """Python's, NumPy's global and torch's generator states, as tensors and plain types."""
    version, internal, gauss = random.getstate()
    numpy_state = np.random.get_state(legacy=False)
    state: dict[str, Any] = {
        "python": {"version": version, "internal": torch.tensor(internal, dtype=torch.int64), "gauss": gauss},
        "numpy": {
            "key": torch.from_numpy(numpy_state["state"]["key"].astype(np.int64)),
            "pos": int(numpy_state["state"]["pos"]),
            "has_gauss": int(numpy_state["has_gauss"]),
            "gauss": float(numpy_state["gauss"]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the states written by :func:`rng_state`."""
    python = state["python"]
    random.setstate((python["version"], tuple(int(v) for v in python["internal"].tolist()), python["gauss"]))
    numpy_state = state["numpy"]
    np.random.set_state(
        {
            "bit_generator": "MT19937",
            "state": {"key": numpy_state["key"].numpy().astype(np.uint32), "pos": numpy_state["pos"]},
            "has_gauss": numpy_state["has_gauss"],
            "gauss": numpy_state["gauss"],
        }
    )
    # a checkpoint loaded with map_location="cuda" carries the generator states as CUDA tensors; the
    # setters only take CPU byte tensors
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def save_checkpoint(state: dict[str, Any], path: str | Path) -> None:
    """``torch.save`` atomically (never half-written).

    Serialised in memory first: torch's zip writer, stopped half-way by an exception, writes to its file
    again when it is collected, and a file already closed then aborts the whole process. A Ctrl-C is held
    during the serialisation too and arrives when the save has ended: raised inside torch's writer it can come
    out as another error, or (once, under load, in the test suite) not at all, so the loop that was
    interrupted went on.
    """
    buffer = io.BytesIO()
    with interrupts_held():
        torch.save(state, buffer)
    write_bytes(path, buffer.getvalue())


def load_checkpoint(
    path: str | Path, map_location: str | torch.device = "cpu", required: tuple[str, ...] = ("model",)
) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``; every failure is one :class:`CheckpointError` line that
    names the file."""
    path = Path(path)
    fix = "retrain the run (mdrchca train) or restore the file from a trusted copy"
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found; {fix}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: checkpoint is empty; {fix}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        raise CheckpointError(
            f"{path}: refused, it holds objects other than tensors and plain values (tampered with, or not a "
            f"checkpoint of this package); {fix}"
        ) from None
    except (EOFError, RuntimeError, ValueError, OSError, zipfile.BadZipFile, AttributeError, TypeError) as exc:
        raise CheckpointError(
            f"{path}: not a readable checkpoint (truncated or corrupt: {exc.__class__.__name__}); {fix}"
        ) from None
    if not isinstance(state, dict) or any(key not in state for key in required):
        raise CheckpointError(f"{path}: not a checkpoint of this package (missing {', '.join(required)}); {fix}")
    return state


def load_model_state(model: torch.nn.Module, state: dict[str, Any], path: str | Path) -> None:
    """``model.load_state_dict`` with a one-line error when the checkpoint does not fit the model."""
    try:
        model.load_state_dict(state["model"])
    except (RuntimeError, KeyError, TypeError, AttributeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        raise CheckpointError(
            f"{path}: does not fit the model built from the run's config.yaml ({first[:160]}); "
            "the checkpoint and config.yaml belong to different runs"
        ) from None

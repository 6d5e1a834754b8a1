"""Seeds and devices."""

from __future__ import annotations

import random

import numpy as np
import torch

from mdrchca.errors import ConfigError


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    """``auto`` means CUDA when available, else CPU; an unavailable device is a one-line error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device={name}: torch finds no CUDA GPU here; use device=cpu or device=auto")
        index = int(name.split(":")[1]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise ConfigError(f"device={name}: only {torch.cuda.device_count()} CUDA device(s); use cuda:0")
    if name == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("device=mps: not available here; use device=cpu or device=auto")
    return torch.device(name)

"""What a cross-modal model shows of itself, typed: per-item confidences for ``mdrchca audit`` and one item's
alignment for ``mdrchca explain``. The commands accept any model that implements :class:`CrossModalReadout`."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Protocol, runtime_checkable

import numpy as np

from mdrchca.models.mdrchca.content import ContentOutput


@dataclass
class ItemConfidence:
    """Per-item means over an item's positions, NaN for an item without both modalities."""

    confidence: np.ndarray
    """Mean text confidence c^t_w over the item's tokens: how well its words find a matching region."""
    pair_confidence: np.ndarray
    """Mean c^t_w c^v_p*(w), the quantity that selects positive pairs."""
    image_confidence: np.ndarray
    """Mean image confidence c^v_p (relative inside an item: its best region has g_p = 1)."""
    alignment_similarity: np.ndarray
    """Mean cosine of each denoised token to its best region."""

    def columns(self) -> dict[str, np.ndarray]:
        """The four arrays by name, as table columns."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@runtime_checkable
class CrossModalReadout(Protocol):
    """A model whose text and image positions are aligned, with confidences to read."""

    modality_names: tuple[str, str]

    def item_confidence(self, batch_size: int | None = None) -> ItemConfidence:
        """:class:`ItemConfidence` of every item, ``batch_size`` items at a time (the model's choice if None)."""
        ...

    def explain_item(self, item: int) -> ContentOutput:
        """The content branch's output for one item, without the batch axis, on the CPU."""
        ...

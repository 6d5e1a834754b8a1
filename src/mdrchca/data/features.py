"""In-memory type of frozen item features (sequences of tokens or regions per item, with masks) and the
reader of the on-disk feature store that `mdrchca features` writes (layout in :mod:`mdrchca.features.store`).

Item-level vectors (MMRec's ``text_feat.npy``) are the length-1 case.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mdrchca.errors import DataError


@dataclass
class ModalityFeatures:
    r"""Frozen features of one modality for every item.

    ``values[i, j]`` is the j-th token (text) or region (image) of item i; ``mask[i, j]`` is True for a real
    one and False for padding. ``phrase_ids[i, j]`` groups text tokens into phrases (``-1`` on padding), or
    is ``None`` where the modality has no phrases. The item-level summary is the masked mean

    .. math:: x_i = \frac{\sum_j m_{ij} v_{ij}}{\max(1, \sum_j m_{ij})}

    and an item with no token at all (missing text or image) has an all-False mask and a zero summary.
    """

    name: str
    values: torch.Tensor  # [n_items, L, d], float
    mask: torch.Tensor  # [n_items, L], bool
    phrase_ids: torch.Tensor | None = None  # [n_items, L], long, -1 on padding
    source: str = ""
    _item_vectors: torch.Tensor | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        where = self.source or self.name
        if self.values.dim() != 3:
            raise DataError(f"{where}: features must be [items, length, dim], got {tuple(self.values.shape)}")
        if self.mask.shape != self.values.shape[:2]:
            raise DataError(
                f"{where}: mask shape {tuple(self.mask.shape)} does not match features {tuple(self.values.shape[:2])}"
            )
        if self.phrase_ids is not None and self.phrase_ids.shape != self.mask.shape:
            raise DataError(
                f"{where}: phrase ids shape {tuple(self.phrase_ids.shape)} does not match mask {tuple(self.mask.shape)}"
            )

    @classmethod
    def from_item_vectors(cls, name: str, vectors: np.ndarray | torch.Tensor, source: str = "") -> ModalityFeatures:
        """Wrap an item-level matrix ``[n_items, d]`` as sequences of length one."""
        tensor = torch.as_tensor(np.asarray(vectors, dtype=np.float32))
        n = tensor.shape[0]
        return cls(
            name=name,
            values=tensor.unsqueeze(1),
            mask=torch.ones(n, 1, dtype=torch.bool),
            phrase_ids=None,
            source=source,
            _item_vectors=tensor,
        )

    @property
    def n_items(self) -> int:
        return int(self.values.shape[0])

    @property
    def max_length(self) -> int:
        return int(self.values.shape[1])

    @property
    def dim(self) -> int:
        return int(self.values.shape[2])

    @property
    def item_vectors(self) -> torch.Tensor:
        """Masked mean over each item's tokens or regions, ``[n_items, d]`` float32."""
        if self._item_vectors is None:
            m = self.mask.unsqueeze(-1).to(torch.float32)
            total = (self.values.to(torch.float32) * m).sum(1)
            self._item_vectors = total / m.sum(1).clamp_min(1.0)
        return self._item_vectors

    def lengths(self) -> torch.Tensor:
        return self.mask.sum(1)

    def phrase_counts(self) -> torch.Tensor | None:
        """Number of distinct phrases per item (phrase ids are 0..P-1 within an item)."""
        if self.phrase_ids is None:
            return None
        return (self.phrase_ids.max(1).values + 1).clamp_min(0)


def load_npy(path: Path, fix: str, mmap: bool = True) -> np.ndarray:
    """``np.load`` a regular, non-empty, unpickled ``.npy`` file, or stop with one line naming it and ``fix``."""
    if not path.is_file():
        raise DataError(f"{path}: {'not a regular file' if path.exists() else 'missing'}; {fix}")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: empty file; {fix}")
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        reason = "it holds pickled objects" if "pickle" in str(exc) else f"{exc.__class__.__name__}"
        raise DataError(f"{path}: not a readable .npy array ({reason}); {fix}") from None


def load_item_vectors(path: Path, n_items: int | None = None) -> ModalityFeatures:
    """Load an MMRec item-level feature file ``<modality>_feat.npy`` (row i = item i), checking it."""
    name = path.name[: -len("_feat.npy")]
    array = load_npy(path, "re-save it with numpy.save as a float array [items, dim]")
    if array.ndim != 2:
        raise DataError(f"{path}: expected a 2-D array [items, dim], got shape {array.shape}; save one row per item")
    if array.shape[1] == 0:
        raise DataError(f"{path}: has 0 columns; save at least one feature dimension per item")
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)) or np.issubdtype(
        array.dtype, np.bool_
    ):
        raise DataError(f"{path}: dtype {array.dtype} is not numeric; save float32 features")
    if n_items is not None and array.shape[0] != n_items:
        raise DataError(
            f"{path}: has {array.shape[0]} rows but the dataset has {n_items} items; "
            "row i must hold item i's features for every item"
        )
    array = np.array(array, dtype=np.float32)  # a writable copy, off the memory map
    bad = ~np.isfinite(array)
    if bad.any():
        rows = np.unique(np.nonzero(bad)[0])
        raise DataError(
            f"{path}: {len(rows)} rows contain NaN or Inf (first: row {rows[0]}); "
            "re-extract those items or replace them with zeros"
        )
    return ModalityFeatures.from_item_vectors(name, array, source=str(path))


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """The store's manifest, ``None`` when it is absent (an unfinished store); a corrupt one is an error."""
    path = folder / "manifest.json"
    if not path.exists():
        return None
    fix = "run mdrchca features again to rewrite the store"
    if not path.is_file():
        raise DataError(f"{path}: not a regular file; {fix}")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: not valid JSON ({exc.__class__.__name__}); {fix}") from None
    if not isinstance(manifest, dict):
        raise DataError(f"{path}: expected a JSON object; {fix}")
    return manifest


def load_sequence_features(folder: Path, name: str, n_items: int | None = None) -> ModalityFeatures:
    """Load a finished store folder as :class:`ModalityFeatures` (values keep their stored dtype), checking
    every array's shape, dtype and values."""
    manifest = read_manifest(folder)
    if manifest is None:
        raise DataError(f"{folder}: no manifest.json, the extraction did not finish; run mdrchca features again")
    fix = "run mdrchca features again to rewrite the store"
    arrays = {}
    for key in ("values", "mask", "phrase_ids", "item"):
        path = folder / f"{key}.npy"
        if path.exists() or key != "phrase_ids":
            arrays[key] = load_npy(path, fix)
    values, mask, item = arrays["values"], arrays["mask"], arrays["item"]
    if values.ndim != 3 or min(values.shape[1:]) == 0 or not np.issubdtype(values.dtype, np.floating):
        raise DataError(
            f"{folder / 'values.npy'}: expected float [items, length, dim] with length and dim above 0, got "
            f"{values.dtype} {values.shape}; {fix}"
        )
    if mask.shape != values.shape[:2] or mask.dtype != np.bool_:
        raise DataError(
            f"{folder / 'mask.npy'}: expected bool {values.shape[:2]}, got {mask.dtype} {mask.shape}; {fix}"
        )
    if item.shape != (values.shape[0], values.shape[2]) or not np.issubdtype(item.dtype, np.floating):
        raise DataError(
            f"{folder / 'item.npy'}: expected float {(values.shape[0], values.shape[2])}, got {item.dtype} "
            f"{item.shape}; {fix}"
        )
    if n_items is not None and values.shape[0] != n_items:
        raise DataError(f"{folder}: features for {values.shape[0]} items but the dataset has {n_items}; re-extract")
    phrases = None
    if "phrase_ids" in arrays:
        raw = arrays["phrase_ids"]
        if raw.shape != mask.shape or not np.issubdtype(raw.dtype, np.integer):
            raise DataError(
                f"{folder / 'phrase_ids.npy'}: expected integers {mask.shape}, got {raw.dtype} {raw.shape}; {fix}"
            )
        phrase_array = np.array(raw, dtype=np.int64)
        # a phrase holds at least one token, so an item has fewer phrases than token slots: this also bounds
        # the memory that per-phrase tensors take
        if len(phrase_array) and (phrase_array.min() < -1 or phrase_array.max() >= values.shape[1]):
            raise DataError(
                f"{folder / 'phrase_ids.npy'}: phrase ids must lie in -1..{values.shape[1] - 1} (fewer phrases than "
                f"tokens), found {phrase_array.min()}..{phrase_array.max()}; {fix}"
            )
        phrases = torch.from_numpy(phrase_array)
    values_tensor = torch.from_numpy(np.array(values))
    if not torch.isfinite(values_tensor).all():
        raise DataError(f"{folder / 'values.npy'}: contains NaN or Inf; re-extract (or lower pca_dim / use float32)")
    item_vectors = np.array(item, dtype=np.float32)
    if not np.isfinite(item_vectors).all():
        raise DataError(f"{folder / 'item.npy'}: contains NaN or Inf; {fix}")
    return ModalityFeatures(
        name=name,
        values=values_tensor,
        mask=torch.from_numpy(np.array(mask)),
        phrase_ids=phrases,
        source=str(folder),
        _item_vectors=torch.from_numpy(item_vectors),
    )

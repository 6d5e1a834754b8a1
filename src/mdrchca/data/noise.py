"""Corrupted content for robustness studies: a share of the items get another item's features, noise, or none.

MDR-CHCA's central claim is that it denoises content; ``mdrchca robustness`` measures it by training every
model on catalogues whose features are corrupted on purpose (``DataConfig.feature_noise``) and plotting test
accuracy against the corrupted share.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from mdrchca.data.features import ModalityFeatures


def corrupted_items(n_items: int, level: float, seed: int) -> np.ndarray:
    """The sorted indices of ``round(level * n_items)`` items drawn without replacement with ``seed``."""
    count = int(round(level * n_items))
    return np.sort(np.random.default_rng(seed).choice(n_items, size=count, replace=False))


def corrupt_features(features: ModalityFeatures, kind: str, level: float, seed: int) -> ModalityFeatures:
    r"""A copy of ``features`` with the items of :func:`corrupted_items` corrupted; the input is left unchanged.

    - ``swap``: the chosen items :math:`i_1 < \dots < i_m` are rotated, item :math:`i_j` getting the tokens,
      mask, phrases and vector of :math:`i_{j+1}` (and :math:`i_m` those of :math:`i_1`), so no chosen item
      keeps its own content (with :math:`m \ge 2`).
    - ``gauss``: :math:`v \leftarrow v + \epsilon,\ \epsilon \sim \mathcal N(0, \sigma_k^2)` on every real token
      or region, :math:`\sigma_k` the standard deviation of dimension :math:`k` over the catalogue's real tokens
      (a signal-to-noise ratio near one).
    - ``drop``: the modality is missing for the chosen items (empty mask, zero vector).
    """
    chosen = torch.from_numpy(corrupted_items(features.n_items, level, seed))
    values = features.values.clone()
    mask = features.mask.clone()
    phrases = None if features.phrase_ids is None else features.phrase_ids.clone()
    vectors = features.item_vectors.clone()
    if len(chosen) == 0 or kind == "none":
        pass
    elif kind == "swap":
        donors = torch.roll(chosen, -1)
        values[chosen], mask[chosen], vectors[chosen] = values[donors], mask[donors], vectors[donors]
        if phrases is not None:
            phrases[chosen] = phrases[donors]
    elif kind == "gauss":
        real = features.values[features.mask].to(torch.float32)
        scale = real.std(0) if len(real) > 1 else torch.ones(values.shape[-1])
        generator = torch.Generator().manual_seed(seed)
        noise = torch.randn(len(chosen), *values.shape[1:], generator=generator) * scale
        noise = noise * mask[chosen].unsqueeze(-1)
        values[chosen] = (values[chosen].to(torch.float32) + noise).to(values.dtype)
        m = mask[chosen].unsqueeze(-1).to(torch.float32)
        vectors[chosen] = (values[chosen].to(torch.float32) * m).sum(1) / m.sum(1).clamp_min(1.0)
    elif kind == "drop":
        values[chosen] = 0
        mask[chosen] = False
        vectors[chosen] = 0
        if phrases is not None:
            phrases[chosen] = -1
    else:
        raise ValueError(f"unknown feature noise {kind!r}; use none, swap, gauss or drop")
    return dataclasses.replace(
        features,
        values=values,
        mask=mask,
        phrase_ids=phrases,
        source=f"{features.source} ({kind} noise on {len(chosen)} items, seed {seed})",
        _item_vectors=vectors,
    )

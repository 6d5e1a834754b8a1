"""Masks applied by addition: one vectorised add instead of ``masked_fill``.

On the CPU, ``masked_fill_`` with a boolean mask broadcast over the heads takes several times as long as adding a
float bias of the same shape, and a float tensor multiplied by a boolean one several times as long as by floats
(one thread, ``[64, 4, 64, 64]`` scores masked by a ``[64, 1, 64, 64]`` mask: 1.31-1.32 ms masked against
0.09-0.23 ms added, the bias built once in 0.19 ms and shared by the heads; ``benchmarks/bench_masking.py``,
docs/results/masks-s21/cpu/masking-*.json).
Attention masks its scores once per head, so it builds the bias once and adds it.
"""

from __future__ import annotations

import torch


def additive_mask(valid: torch.Tensor, dtype: torch.dtype = torch.float32, infinite: bool = False) -> torch.Tensor:
    r"""``0`` where ``valid`` (booleans, or floats that are 0 or 1) and the dtype's lowest finite value elsewhere
    (``-inf`` with ``infinite``), as ``dtype``: :math:`b = (\mathbb 1[\text{valid}] - 1) \cdot \max` (doubled
    for ``-inf``: it overflows).

    Added to finite scores ``x`` with :math:`|x| < 10^{30}` it gives exactly what ``x.masked_fill(~valid,
    lowest)`` gives (``lowest + x`` rounds to ``lowest``), or ``-inf`` with ``infinite``, bitwise.
    """
    bias = (valid.to(dtype) - 1).mul_(torch.finfo(dtype).max)  # out of place: ``valid`` may be the caller's floats
    return bias.mul_(2) if infinite else bias


def mask_operand(valid: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    """``valid`` in the form the masking of ``scores`` reads fastest on their device: 0/1 floats of their dtype on
    the CPU (where :func:`fill_invalid_` adds a bias built from it, and a product by floats is ~7x faster than by
    booleans), the booleans elsewhere. Convert once and pass it to every fill and product of the same mask."""
    return valid.to(scores.dtype) if scores.device.type == "cpu" else valid


def fill_invalid_(
    scores: torch.Tensor, valid: torch.Tensor, infinite: bool = False, dim: int | None = None
) -> torch.Tensor:
    """``scores`` with every entry off ``valid`` set, in place, to the lowest finite value (``-inf`` with
    ``infinite``); ``dim``: a dimension of ``scores`` that ``valid`` lacks (the heads), broadcast over.

    On the CPU by adding :func:`additive_mask` (``valid`` may then be floats that are 0 or 1, as
    :func:`mask_operand` gives), elsewhere by ``masked_fill_`` (``valid`` boolean): on a GPU the bias's three extra
    kernels cost more than the fill saves (the Clothing-sized validation pass 0.26 s with the fill, 0.32 s with the
    bias; docs/benchmarks.md)."""
    if scores.device.type == "cpu":
        mask = additive_mask(valid, scores.dtype, infinite)
        return scores.add_(mask if dim is None else mask.unsqueeze(dim))
    fill = -torch.inf if infinite else torch.finfo(scores.dtype).min
    invalid = ~valid
    return scores.masked_fill_(invalid if dim is None else invalid.unsqueeze(dim), fill)

"""Masks applied by addition: one vectorised add instead of ``masked_fill``.

On the CPU, ``masked_fill_`` with a boolean mask broadcast over the heads takes several times as long as adding a
float bias of the same shape, and a float tensor multiplied by a boolean one several times as long as by floats
(one thread, ``[64, 4, 64, 64]`` scores masked by a ``[64, 1, 64, 64]`` mask: 1.28-1.35 ms masked against
0.13-0.18 ms added, the bias built once in 0.19-0.28 ms and shared by the heads; ``benchmarks/bench_masking.py``).
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

"""MDR-CHCA's confidence screen (the paper's *Generation of Positive and Negative Sample Pairs*): candidate pairs, the
positive / noisy tests, hard negatives,
the adaptive thresholds and the per-epoch log of what the screen did."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


class AdaptiveThresholds(nn.Module):
    r"""Positive / negative screening thresholds, updated after each step without gradient:

    .. math::
        \theta_{pos} \leftarrow \theta_{pos} + \eta_1 (\bar m - \theta_{pos}), \qquad
        \theta_{neg} \leftarrow \theta_{neg} - \eta_2 (\rho - \theta_{neg})

    with :math:`m = \min(c^t_w, c^v_{p^*})` the screening confidence of a pair, :math:`\bar m` its mean over the
    step's pairs and :math:`\rho` the share of pairs with :math:`m < \theta_{neg}` (the noise ratio). A pair is
    positive when *both* confidences exceed :math:`\theta_{pos}`, that is when :math:`m > \theta_{pos}`, so the
    thresholds track the very quantity the tests read. (Tracking the mean of the product
    :math:`c^t c^v \le m` instead let :math:`\theta_{pos}` sink below both factors until nearly every pair
    passed: 98.8% positive after 61 steps in a 120-item run.) Both are buffers, so they live in the checkpoint.

    The literal :math:`\theta_{neg}` rule is unstable: once :math:`\theta_{neg} \le 0` no pair is below it,
    :math:`\rho = 0` and :math:`\theta_{neg} \leftarrow (1 + \eta_2)\theta_{neg}` runs off to :math:`-\infty`.
    So after each update :math:`\theta_{pos}` is clamped to [0, 1] and :math:`\theta_{neg}` to
    :math:`[0, \theta_{pos}]` (confidences live in [0, 1]).
    """

    def __init__(
        self,
        theta_pos: float = 0.6,
        theta_neg: float = 0.4,
        eta_1: float = 0.05,
        eta_2: float = 0.05,
        margin: float = 0.0,
    ) -> None:
        super().__init__()
        self.register_buffer("theta_pos", torch.tensor(float(theta_pos)))
        self.register_buffer("theta_neg", torch.tensor(float(theta_neg)))
        self.eta_1, self.eta_2, self.margin = eta_1, eta_2, margin

    @torch.no_grad()
    def update(self, screening_confidence: torch.Tensor) -> None:
        r"""One step's update from the pairs' screening confidences :math:`m = \min(c^t, c^v)`."""
        if screening_confidence.numel() == 0:
            return
        mean_conf = screening_confidence.mean()
        noise_ratio = (screening_confidence < self.theta_neg).float().mean()
        self.theta_pos += self.eta_1 * (mean_conf - self.theta_pos)
        self.theta_neg -= self.eta_2 * (noise_ratio - self.theta_neg)
        self.theta_pos.clamp_(0.0, 1.0)
        self.theta_neg.clamp_(min=0.0).clamp_(max=max(0.0, float(self.theta_pos) - self.margin))


@dataclass
class Pairs:
    """Selected pairs for a batch of items: anchor tokens and their regions, flattened over items."""

    item: torch.Tensor  # [N] item (batch row) of each anchor
    token: torch.Tensor  # [N] token position of the anchor
    region: torch.Tensor  # [N] its best region p*(w)
    confidence: torch.Tensor  # [N] c^t_w * c^v_{p*}: the weight of the pair's InfoNCE term
    screening: torch.Tensor  # [N] min(c^t_w, c^v_{p*}): what the positive / noise tests and thresholds read


def candidate_pairs(
    token_mask: torch.Tensor, best_region: torch.Tensor, text_conf: torch.Tensor, image_conf: torch.Tensor
) -> tuple[Pairs, torch.Tensor, torch.Tensor]:
    """Every valid token with its best region; returns the pairs and the two confidences of each."""
    item, token = torch.nonzero(token_mask, as_tuple=True)
    region = best_region[item, token]
    c_t = text_conf[item, token]
    c_v = image_conf[item, region]
    return Pairs(item, token, region, c_t * c_v, torch.minimum(c_t, c_v)), c_t, c_v


def positive_mask(c_t: torch.Tensor, c_v: torch.Tensor, theta_pos: torch.Tensor) -> torch.Tensor:
    r"""Positive pairs: :math:`c^t_w > \theta_{pos}` and :math:`c^v_{p^*} > \theta_{pos}`, i.e.
    :math:`\min(c^t_w, c^v_{p^*}) > \theta_{pos}`."""
    return torch.minimum(c_t, c_v) > theta_pos


def noisy_mask(c_t: torch.Tensor, c_v: torch.Tensor, theta_neg: torch.Tensor) -> torch.Tensor:
    r"""Noisy (hard-negative) pairs: :math:`c^t_w < \theta_{neg}` or :math:`c^v_{p^*} < \theta_{neg}`, i.e.
    :math:`\min(c^t_w, c^v_{p^*}) < \theta_{neg}`; the rest, neither positive nor noisy, are unused."""
    return torch.minimum(c_t, c_v) < theta_neg


def hard_negative_mask(
    image_conf: torch.Tensor,
    region_mask: torch.Tensor,
    anchor_item: torch.Tensor,
    anchor_region: torch.Tensor,
    theta_neg: torch.Tensor,
) -> torch.Tensor:
    r"""Hard negatives of each anchor, ``[N, R]``: the other regions of the same item with
    :math:`c^v_p < \theta_{neg}` (an anchor is a positive, so its own :math:`c^t_w` is never low)."""
    low = (image_conf < theta_neg) & region_mask  # [B, R]
    mask = low[anchor_item].clone()
    mask[torch.arange(len(anchor_item), device=mask.device), anchor_region] = False
    return mask


def noisy_pair_negatives(
    pairs: Pairs,
    noisy: torch.Tensor,
    text_units: torch.Tensor,
    region_units: torch.Tensor,
    anchor_item: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""Hard negatives of each anchor from the noisy pairs of its own item, ``[N, L]`` each: the similarity
    :math:`s(w', p^*(w')) = \hat q_{w'} \cdot \hat k_{p^*(w')}` of every pair the screen calls noisy
    (:math:`\min(c^t_{w'}, c^v_{p^*(w')}) < \theta_{neg}`), its confidence :math:`c^t_{w'} c^v_{p^*(w')}`, and the
    mask of those pairs.

    ``pairs``: every token with its best region (:func:`candidate_pairs`), ``noisy [n_pairs]`` the screen's test;
    ``text_units [B, L, d]`` and ``region_units [B, R, d]`` unit vectors; ``anchor_item [N]`` the batch row of
    each anchor. Only the noisy pairs' similarities are computed; an anchor is a positive, so it is never among
    its own hard negatives."""
    B, L = text_units.shape[:2]
    item, token, region = pairs.item[noisy], pairs.token[noisy], pairs.region[noisy]
    similarity = (text_units[item, token] * region_units[item, region]).sum(-1)
    table = text_units.new_zeros(B, L).index_put((item, token), similarity)
    confidence = text_units.new_zeros(B, L).index_put((item, token), pairs.confidence[noisy].to(text_units.dtype))
    mask = torch.zeros(B, L, dtype=torch.bool, device=text_units.device).index_put(
        (item, token), torch.ones_like(item, dtype=torch.bool)
    )
    return table[anchor_item], confidence[anchor_item], mask[anchor_item]


class ScreenLog:
    """Running totals of one epoch's confidence screen and loss terms (what :meth:`MDRCHCA.epoch_log` reports)."""

    def __init__(self) -> None:
        self.pairs = self.positive = self.noisy = 0
        self.steps = 0
        self.bpr = self.conf = 0.0

    def add(self, pairs: int, positive: int, noisy: int) -> None:
        self.pairs += pairs
        self.positive += positive
        self.noisy += noisy

    def add_losses(self, bpr: float, conf: float) -> None:
        self.steps += 1
        self.bpr += bpr
        self.conf += conf

    def summary(self) -> dict[str, float]:
        out: dict[str, float] = {}
        if self.steps:
            out.update(loss_bpr=self.bpr / self.steps, loss_conf=self.conf / self.steps)
        if self.pairs:
            unused = self.pairs - self.positive - self.noisy
            out.update(
                pos_share=self.positive / self.pairs,
                noisy_share=self.noisy / self.pairs,
                unused_share=unused / self.pairs,
            )
        return out

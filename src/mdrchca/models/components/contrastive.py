"""Contrastive objectives: MDR-CHCA's confidence-based pair selection, confidence-weighted InfoNCE and adaptive
thresholds (MODEL.md §7), and the in-batch and two-view InfoNCE losses the baselines use."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


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
        self, theta_pos: float = 0.6, theta_neg: float = 0.4, eta_1: float = 0.05, eta_2: float = 0.05
    ) -> None:
        super().__init__()
        self.register_buffer("theta_pos", torch.tensor(float(theta_pos)))
        self.register_buffer("theta_neg", torch.tensor(float(theta_neg)))
        self.eta_1, self.eta_2 = eta_1, eta_2

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
        self.theta_neg.clamp_(min=0.0).clamp_(max=float(self.theta_pos))


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


def confidence_weighted_infonce(
    s_pos: torch.Tensor,
    c_pos: torch.Tensor,
    s_hard: torch.Tensor,
    c_hard: torch.Tensor,
    hard_mask: torch.Tensor,
    s_rand: torch.Tensor,
    rand_mask: torch.Tensor,
    tau: float,
    weighting: str = "logit",
) -> torch.Tensor:
    r"""Confidence-weighted InfoNCE (MODEL.md §7). ``weighting="logit"``, the literal reading:

    .. math::
        \mathcal L_{conf} = -\frac{1}{|\mathcal P|} \sum_{\mathcal P}
        \log \frac{e^{c\, s^+ / \tau}}{e^{c\, s^+/\tau} + \sum_{hard} e^{c_h s_h / \tau} + \sum_{rand} e^{s_r/\tau}}

    ``weighting="loss"``: the confidences weight each anchor's term instead of its logits,

    .. math::
        \mathcal L_{conf} = -\frac{\sum_{\mathcal P} c \log \frac{e^{s^+/\tau}}{e^{s^+/\tau}
        + \sum_{hard} e^{s_h/\tau} + \sum_{rand} e^{s_r/\tau}}}{\sum_{\mathcal P} c}

    The literal form has a degenerate minimum when c < 1: with every similarity at -1 the positive's logit
    -c/tau still beats the negatives' -1/tau by (1 - c)/tau, a lower loss than true alignment gives; training
    found it (every query-key cosine -1 after 30 epochs, docs/model.md).

    ``s_pos, c_pos [N]``; ``s_hard, c_hard, hard_mask [N, H]``; ``s_rand, rand_mask [N, M]``. Masked entries
    are left out of the sums. With all confidences 1 and no hard negative both are plain InfoNCE.
    """
    if s_pos.numel() == 0:
        return s_pos.sum() * 0.0
    if weighting == "loss":
        weights, c_pos, c_hard = c_pos, torch.ones_like(c_pos), torch.ones_like(c_hard)
    elif weighting != "logit":
        raise ValueError(f"unknown confidence weighting {weighting!r}")
    pos = (c_pos * s_pos / tau).unsqueeze(1)
    hard = (c_hard * s_hard / tau).masked_fill(~hard_mask, -torch.inf)
    rand = (s_rand / tau).masked_fill(~rand_mask, -torch.inf)
    logits = torch.cat([pos, hard, rand], dim=1)
    per_anchor = -(pos.squeeze(1) - torch.logsumexp(logits, dim=1))
    if weighting == "loss":
        return (weights * per_anchor).sum() / weights.sum().clamp_min(1e-12)
    return per_anchor.mean()


def sample_other_items(
    anchor_item: torch.Tensor, n_items: int, n_samples: int, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n_samples`` random items of the batch other than each anchor's own: ``[N, M]`` rows and validity."""
    N = len(anchor_item)
    if n_items < 2 or n_samples == 0:
        empty = torch.zeros(N, max(n_samples, 1), dtype=torch.long, device=anchor_item.device)
        return empty, torch.zeros_like(empty, dtype=torch.bool)
    # draw from n_items - 1 values and skip over the anchor's own row
    draw = torch.randint(0, n_items - 1, (N, n_samples), device=anchor_item.device, generator=generator)
    draw = draw + (draw >= anchor_item.unsqueeze(1)).long()
    return draw, torch.ones_like(draw, dtype=torch.bool)


def in_batch_infonce(anchors: torch.Tensor, positives: torch.Tensor, temperature: float) -> torch.Tensor:
    r""":math:`-\frac1B \sum_k \log \frac{e^{a_k^\top p_k/\tau}}{\sum_l e^{a_k^\top p_l/\tau}}` (the other rows of
    the batch are the negatives)."""
    logits = anchors @ positives.T / temperature
    return F.cross_entropy(logits, torch.arange(len(anchors), device=anchors.device))


def two_view_infonce(z1: torch.Tensor, z2: torch.Tensor, temperature: float, chunk: int = 4096) -> torch.Tensor:
    r"""Node-level contrastive loss of GRACE / MICRO over all rows, both views' other rows as negatives:

    .. math::
        \ell_i = -\log \frac{e^{s(z^1_i, z^2_i)/\tau}}
        {\sum_j e^{s(z^1_i, z^2_j)/\tau} + \sum_{j \ne i} e^{s(z^1_i, z^1_j)/\tau}}, \qquad
        \mathcal L = \tfrac{1}{N} \sum_i \ell_i

    with :math:`s` the cosine similarity. Computed in row chunks (memory ``chunk x N``).
    """
    a, b = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
    losses = []
    for start in range(0, len(a), chunk):
        rows = a[start : start + chunk]
        self_sim = rows @ a.T / temperature
        cross_sim = rows @ b.T / temperature
        idx = torch.arange(start, start + len(rows), device=a.device)
        local = torch.arange(len(rows), device=a.device)
        self_sim[local, idx] = -torch.inf  # the anchor itself is no negative
        denominator = torch.logsumexp(torch.cat([self_sim, cross_sim], dim=1), dim=1)
        losses.append(denominator - cross_sim[local, idx])
    return torch.cat(losses).mean()

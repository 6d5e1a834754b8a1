"""MDR-CHCA's confidence-weighted InfoNCE (the paper's *Confidence-Weighted Contrastive Loss Function*) and its random
negatives."""

from __future__ import annotations

import torch


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
    r"""Confidence-weighted InfoNCE (the paper's *Confidence-Weighted Contrastive Loss Function*).
    ``weighting="logit"``, the literal reading:

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


def best_regions_of_other_items(
    anchors: torch.Tensor, regions: torch.Tensor, region_mask: torch.Tensor, anchor_item: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""For each anchor token and each *other* item of the batch, the similarity to that item's best-matching
    region, :math:`s_{w j} = \max_{p} \cos(q_w, k^{(j)}_p)`: ``[N, B]`` and its validity (False for the
    anchor's own item and for items without regions).

    The positive of an anchor is its *best* region among its own item's candidates; a random region of another
    item is a weaker competitor than that, so the InfoNCE can be lowered by spreading the regions inside each
    item (the max rises, a random region falls) without ever learning which image belongs to which text.
    Against the other items' best regions it can only be lowered by matching a token to its own image.
    ``anchors [N, d]`` and ``regions [B, R, d]`` unit vectors, ``region_mask [B, R]``, ``anchor_item [N]``.
    """
    B, R, d = regions.shape
    sims = (anchors @ regions.reshape(B * R, d).T).view(-1, B, R)
    sims = sims.masked_fill(~region_mask.unsqueeze(0), -torch.inf).amax(-1)  # [N, B]
    valid = torch.isfinite(sims)
    valid[torch.arange(len(anchor_item), device=valid.device), anchor_item] = False
    return sims.masked_fill(~valid, 0.0), valid

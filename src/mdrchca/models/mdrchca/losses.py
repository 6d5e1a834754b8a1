"""MDR-CHCA's confidence-weighted InfoNCE (the paper's *Confidence-Weighted Contrastive Loss Function*) and its random
negatives."""

from __future__ import annotations

from typing import NamedTuple

import torch

from mdrchca.models.components.masking import fill_invalid_


class Similarities(NamedTuple):
    """One group of :func:`confidence_weighted_infonce`'s terms: ``similarity`` s ([N] for the positives,
    [N, K] for negatives), its ``confidence`` c (None: 1) and the ``mask`` of the entries that count (None:
    all)."""

    similarity: torch.Tensor
    confidence: torch.Tensor | None = None
    mask: torch.Tensor | None = None


def confidence_weighted_infonce(
    positive: Similarities,
    random: Similarities,
    tau: float,
    hard: Similarities | None = None,
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

    ``positive``: s, c [N]; ``hard``: s, c, mask [N, H] (None: no hard negatives); ``random``: s, mask [N, M]
    (its confidences are not read). With all confidences 1 and no hard negative both are plain InfoNCE.
    """
    s_pos = positive.similarity
    if s_pos.numel() == 0:
        return s_pos.sum() * 0.0
    c_pos = _confidence(positive)
    if weighting not in ("logit", "loss"):
        raise ValueError(f"unknown confidence weighting {weighting!r}")
    literal = weighting == "logit"
    pos = ((c_pos if literal else 1.0) * s_pos / tau).unsqueeze(1)
    terms = [pos]
    if hard is not None:
        c_hard = _confidence(hard) if literal else 1.0
        terms.append((c_hard * hard.similarity / tau).masked_fill(~_mask(hard), -torch.inf))
    terms.append((random.similarity / tau).masked_fill(~_mask(random), -torch.inf))
    per_anchor = -(pos.squeeze(1) - torch.logsumexp(torch.cat(terms, dim=1), dim=1))
    if literal:
        return per_anchor.mean()
    return (c_pos * per_anchor).sum() / c_pos.sum().clamp_min(1e-12)


def _confidence(group: Similarities) -> torch.Tensor:
    return group.confidence if group.confidence is not None else torch.ones_like(group.similarity)


def _mask(group: Similarities) -> torch.Tensor:
    return group.mask if group.mask is not None else torch.ones_like(group.similarity, dtype=torch.bool)


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

    The max's gradient reaches only the best region of each (anchor, item), so the search over all ``N x B x
    R`` similarities runs without gradients and only the ``N x B`` chosen ones are recomputed with them: the
    same values and gradients as differentiating the whole product (up to ties and rounding), without its
    backward, more than half of L_conf's arithmetic (ML-100K's epoch: 99 -> 81 GFLOP; docs/benchmarks.md).
    """
    B, R, d = regions.shape
    with torch.no_grad():
        search = (anchors @ regions.reshape(B * R, d).T).view(-1, B, R)
        best = fill_invalid_(search, region_mask, infinite=True, dim=0).max(-1)  # [N, B]
        valid = torch.isfinite(best.values)
        valid[torch.arange(len(anchor_item), device=valid.device), anchor_item] = False
    flat = best.indices + R * torch.arange(B, device=regions.device)  # [N, B] rows of regions.reshape(B * R, d)
    # index_select rather than indexing: on the CPU 6x faster forward and 2.5x with its backward (an index_add_
    # instead of an accumulating index_put_), which may sum a region's gradient in another order (last bits)
    chosen = regions.reshape(B * R, d).index_select(0, flat.reshape(-1)).view(*flat.shape, d)  # [N, B, d]
    sims = torch.einsum("nd,nbd->nb", anchors, chosen)
    return sims.masked_fill(~valid, 0.0), valid

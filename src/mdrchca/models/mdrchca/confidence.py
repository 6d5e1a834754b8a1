"""Text and image confidence of aligned features (the paper's *Confidence Evaluation*)."""

from __future__ import annotations

import torch

from mdrchca.models.mdrchca.alignment import cosine_similarity_matrix


def text_confidence(values: torch.Tensor, query_mask: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    r"""Text confidence :math:`c^t_w = \sigma(\max_{p \in C(w)} r_{wp})`, ``[B, L]``, 0 on padding.

    The paper's :math:`\sigma(\max_p \mathrm{Attn}_{wp})` with :math:`r` the attention read chosen by the
    model's ``confidence_source`` over the token's candidates :math:`C(w)`: ``values [B, L, C]`` holds the
    head-averaged cosine of query and key divided by tau (bounded, comparable across items; default), the
    scaled logits, or the softmax weights (the literal reading, whose sigmoid only spans (0.5, 0.73]),
    divided by ``scale`` (tau for the cosine). ``-inf`` marks non-candidates; a row with none, or with a NaN,
    gets 0. The maximum is taken before the division (the same number: dividing by a positive scale keeps the
    order), so that only ``[B, L]`` is divided.
    """
    best = values.amax(-1) / scale
    conf = torch.sigmoid(best)
    return torch.where(query_mask & torch.isfinite(best), conf, torch.zeros_like(conf))


def image_confidence(
    phrase_region_similarity: torch.Tensor,
    phrase_mask: torch.Tensor,
    region_mask: torch.Tensor,
    region_fine: torch.Tensor,
    tau: float = 0.5,
    form: str = "product",
    fine_scale: float = 1.0,
) -> torch.Tensor:
    r"""Image confidence, ``[B, R]``, 0 on padding.

    .. math::
        g_p = \frac{\mathrm{softmax}_p(\max_k s_{kp} / \tau)}{\max_{p'} \mathrm{softmax}_{p'}(\max_k s_{kp'} / \tau)}
        = \exp\Big(\frac{\max_k s_{kp} - \max_{p'}\max_k s_{kp'}}{\tau}\Big)

    (the softmax over an item's regions rescaled by its maximum, so that it shares the thresholds' scale).
    ``form="product"`` (default) combines it with the region's fine attention,
    :math:`c^v_p = g_p \cdot \sigma(\max_{w \in C(p)} r_{pw})` (``region_fine [B, R, C]``: the same read as
    the text confidence, by default the head-averaged query-key cosine / tau over the region's candidate
    tokens, not a logit, divided by ``fine_scale``: tau for the cosine); ``form="coarse"`` is :math:`g_p` alone.
    """
    sim = phrase_region_similarity.masked_fill(~phrase_mask.unsqueeze(-1), -torch.inf)
    best_phrase = sim.amax(1)  # [B, R]
    best_phrase = best_phrase.masked_fill(~region_mask, -torch.inf)
    top = best_phrase.amax(-1, keepdim=True)
    g = torch.exp((best_phrase - top) / tau).nan_to_num(0.0)
    if form == "product":
        fine = region_fine.amax(-1) / fine_scale  # -inf where a region has no candidate: sigmoid 0
        g = g * torch.sigmoid(fine).nan_to_num(0.0)
    elif form != "coarse":
        raise ValueError(f"unknown image confidence form {form!r}")
    return torch.where(region_mask, g, torch.zeros_like(g))


def candidate_cosine(
    queries: torch.Tensor, sources: torch.Tensor, candidates: torch.Tensor, valid: torch.Tensor
) -> torch.Tensor:
    r""":math:`\cos(x_w, y_p)` of each query with each of its candidate sources, ``[B, Q, C]``, ``-inf`` where
    not ``valid``: the reading of ``confidence_source="denoised"``, in the space of the denoised features
    :math:`\tilde t, \tilde v` that the InfoNCE with ``pair_features="denoised"`` trains.

    ``queries [B, Q, d]``, ``sources [B, S, d]``, ``candidates [B, Q, C]`` source indices.
    """
    # one [B, Q, S] product, then a gather: gathering the candidates' features would move C x d per query
    cosine = cosine_similarity_matrix(queries, sources).gather(-1, candidates)
    return cosine.masked_fill(~valid, -torch.inf)


def region_column_max(values: torch.Tensor, candidates: torch.Tensor, n_regions: int) -> torch.Tensor:
    r"""For each region, the largest token-to-region read that names it, :math:`\max_w \mathrm{Attn}_{wp}`
    over the tokens w with p among their candidates: ``[B, R, 1]``, ``-inf`` for regions no token reaches.

    ``values [B, L, C]`` (``-inf`` off the candidates), ``candidates [B, L, C]`` region indices. This is the
    image side's fine read taken from the token-region attention itself (``image_fine=token``).
    """
    B = values.shape[0]
    out = values.new_full((B, n_regions), -torch.inf)
    out = out.scatter_reduce(1, candidates.reshape(B, -1), values.reshape(B, -1), reduce="amax")
    return out.unsqueeze(-1)

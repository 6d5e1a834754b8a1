r"""Fusion of the aligned features into one content vector per item (the paper's *Modal Feature Fusion and
Prediction*), and where the confidences act
on it.

The paper fuses :math:`f_i = b_t z^t_i + b_v z^v_i` with :math:`(b_t, b_v)` learned, and says the confidence
screen leaves "fused features with strong noise discriminability". Read as plain means, a token's or a region's
confidence never reaches :math:`f_i`. With confidence pooling it does:

.. math::
    z^t_i = \frac{\sum_w \omega_w \big(\tilde t_w + \omega_w \textstyle\sum_p A^s_{wp} \tilde v_p W_V\big)}
    {\sum_w \omega_w}, \qquad \omega_w = c^t_w \cdot [\,m_w \ge \theta_{neg}\,]

(a token that finds no matching region brings less of its text and less of the image it was matched with; a
token the screen calls noisy, :math:`m_w = \min(c^t_w, c^v_{p^*(w)}) < \theta_{neg}`, brings nothing), the
same for regions with :math:`c^v_p`, and an item gate

.. math:: \kappa_i = \min\Big(1, \frac{\mathrm{mean}_w\, m_w}{\theta_{pos}}\Big)

with :math:`m_w` the pair confidence the screen tests, that scales the item's whole content: an item whose
pairs pass the positive test on average keeps all of it, one whose text and image disagree keeps less. An item
without the other modality has no confidence: its positions weigh alike and its gate is 1.
"""

from __future__ import annotations

import torch


def confidence_pooling(
    features: torch.Tensor,
    cross: torch.Tensor,
    confidence: torch.Tensor,
    mask: torch.Tensor,
    screened: torch.Tensor | None = None,
    residual: bool = True,
) -> torch.Tensor:
    r""":math:`z = \sum_w \omega_w (x_w + \omega_w x^{cross}_w) / \sum_w \omega_w` over the real positions.

    ``features [B, L, d]`` the denoised features :math:`\tilde x`, ``cross [B, L, d]`` their aggregated
    cross-modal term, ``confidence [B, L]`` the weights :math:`c` (0 on padding), ``mask [B, L]``;
    ``screened [B, L]`` marks positions the screen drops (weight 0). An item whose confidences are all zero
    (no candidate in the other modality) is pooled with uniform weights. With ``residual`` false the
    features themselves are left out (the literal aligned feature is the cross term alone).
    """
    w = pooling_weights(confidence, mask, screened).unsqueeze(-1)
    pooled = w * cross * w
    if residual:
        pooled = pooled + w * features
    return pooled.sum(1) / w.sum(1).clamp_min(1e-12)


def pooling_weights(confidence: torch.Tensor, mask: torch.Tensor, screened: torch.Tensor | None = None) -> torch.Tensor:
    r""":math:`\omega_w` of :func:`confidence_pooling`, ``[B, L]``: the confidence on real, unscreened positions;
    the mask itself for an item whose confidences are all zero."""
    weights = confidence * mask
    if screened is not None:
        weights = weights * ~screened
    has_any = weights.sum(1, keepdim=True) > 0
    return torch.where(has_any, weights, mask.to(weights.dtype))


def pooled_through_weights(
    features: torch.Tensor,
    sources: torch.Tensor,
    value: torch.nn.Module,
    sparse: torch.Tensor,
    cross_weights: torch.Tensor,
    feature_weights: torch.Tensor | None,
    denominator: torch.Tensor,
) -> torch.Tensor:
    r"""A pooling of aligned features whose cross term is linear in the sources, computed in the order that
    never forms the aligned features:

    .. math::
        \frac{\sum_w a_w \sum_p A^s_{wp}\, \tilde v_p W_V + \sum_w b_w \tilde t_w}{D}
        = \frac{\big((a^\top A^s)\, \tilde V\big) W_V + b^\top \tilde T}{D}

    :math:`O(Q S + S d + d^2)` per item instead of :math:`O(Q S d + S d^2)`. ``features [B, Q, d]``
    (:math:`\tilde t`), ``sources [B, S, d]`` (:math:`\tilde v`), ``value`` the attention's bias-free
    :math:`W_V`, ``sparse [B, Q, S]`` (:math:`A^s`), ``cross_weights [B, Q]`` (a), ``feature_weights [B, Q]`` (b;
    None leaves the features out, ``aligned_residual=false``), ``denominator [B, 1]``. With
    :math:`a = \omega^2, b = \omega, D = \sum \omega` it is :func:`confidence_pooling`; with a = b = the mask and
    D = max(count, 1), the plain mean of the aligned features. Equal to them up to rounding (the sums run in
    another order)."""
    mixed = (cross_weights.unsqueeze(1) @ sparse) @ sources  # [B, 1, d]
    pooled = value(mixed.squeeze(1))
    if feature_weights is not None:
        pooled = pooled + (feature_weights.unsqueeze(1) @ features).squeeze(1)
    return pooled / denominator


def item_gate(
    pair_confidence: torch.Tensor, token_mask: torch.Tensor, has_both: torch.Tensor, theta_pos: torch.Tensor | float
) -> torch.Tensor:
    r""":math:`\kappa_i = \min(1, \mathrm{mean}_w m_w / \theta_{pos})`, ``[B]``, with ``pair_confidence [B, L]``
    the :math:`m_w = \min(c^t_w, c^v_{p^*(w)})` of each token's pair; 1 for an item without both modalities
    (nothing to screen)."""
    m = token_mask.to(pair_confidence.dtype)
    mean = (pair_confidence * m).sum(1) / m.sum(1).clamp_min(1.0)
    theta = torch.as_tensor(theta_pos, dtype=mean.dtype, device=mean.device).clamp_min(1e-6)
    gate = (mean / theta).clamp(max=1.0)
    return torch.where(has_both, gate, torch.ones_like(gate))

"""Self-attention denoising inside an item, with a trainable residual coefficient."""

from __future__ import annotations

import math

import torch
from torch import nn

from mdrchca.models.components.masking import fill_invalid_


class SelfAttentionDenoiser(nn.Module):
    r"""Preliminary denoising of one modality's tokens (the paper's *Multi-modal feature encoding and denoising*):

    .. math::
        \mathrm{SA}(T) = \mathrm{softmax}\!\Big(\frac{Q K^\top}{\sqrt d}\Big) V, \quad Q, K, V = T W_Q, T W_K, T W_V

        \tilde T = a\, \mathrm{SA}(T) + (1 - a)\, T, \qquad a = \sigma(\alpha)

    with :math:`\alpha` trainable (initialised at ``alpha_init``) and padding keys masked. An item with no
    valid token keeps zeros. The logits are formed as :math:`T\,(W_Q W_K^\top / \sqrt d)\,T^\top`, the same
    parameters and values with one projection of the positions fewer.
    """

    def __init__(self, dim: int, alpha_init: float = 0.0) -> None:
        super().__init__()
        self.query = nn.Linear(dim, dim, bias=False)
        self.key = nn.Linear(dim, dim, bias=False)
        self.value = nn.Linear(dim, dim, bias=False)
        self.alpha = nn.Parameter(torch.tensor(float(alpha_init)))
        for layer in (self.query, self.key, self.value):
            nn.init.xavier_uniform_(layer.weight)

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``tokens [B, L, d]``, ``mask [B, L]`` (True = real) -> denoised ``[B, L, d]``."""
        # q k^T = T (W_Q^T W_K) T^T with nn.Linear's (out x in) weights: one d x d product of the weights instead
        # of projecting the keys (the same parameters and values up to rounding; the scale folds into it). The
        # mask in place on the product's fresh output: no extra pass over [B, L, L]
        query_key = (self.query.weight.T / math.sqrt(tokens.shape[-1])) @ self.key.weight
        logits = (tokens @ query_key) @ tokens.transpose(1, 2)
        v = self.value(tokens)
        # padding keys at the lowest finite value: weight exactly 0 beside any real key; an empty item's rows
        # are uniform instead of NaN, and its output is zeroed by the mask below
        logits = fill_invalid_(logits, mask, dim=1)
        weights = torch.softmax(logits, dim=-1)
        out = torch.lerp(tokens, weights @ v, torch.sigmoid(self.alpha))  # a SA(T) + (1 - a) T in one pass
        return out * mask.unsqueeze(-1)

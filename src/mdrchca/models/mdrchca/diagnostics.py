"""Perturbations of a trained MDR-CHCA that switch one mechanism off with the trained weights otherwise kept.

A mechanism counts when switching it off changes what the model recommends; ``mdrchca probe`` applies each of
these to a copy of a trained model and measures the change (:mod:`mdrchca.experiments.probe`). Each probe
mutates the copy it is given and nothing else.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch import nn

from mdrchca.models.base import Probe

if TYPE_CHECKING:
    from mdrchca.models.mdrchca.model import MDRCHCA


def _rerandomise_alignment(model: MDRCHCA, draw: int) -> None:
    """W_Q and W_K of both fine attentions (text -> region and region -> text) drawn afresh (Xavier): every
    confidence, every token's best region and every top-k_s selection then comes from untrained weights."""
    generator = torch.Generator().manual_seed(draw)
    branch = model.content_branch
    for attention in (branch.text_to_region, branch.region_to_text):
        for layer in (attention.query, attention.key):
            fresh = nn.init.xavier_uniform_(torch.empty_like(layer.weight, device="cpu"), generator=generator)
            layer.weight.data.copy_(fresh.to(layer.weight.device))


def _set_config(**changes: object) -> Callable[[MDRCHCA, int], None]:
    def apply(model: MDRCHCA, draw: int) -> None:
        model.config = dataclasses.replace(model.config, **changes)
        model.content_branch.config = model.config

    return apply


def _zero_cross_modal_values(model: MDRCHCA, draw: int) -> None:
    """W_V of both fine attentions zeroed: the aligned features keep their own modality only."""
    for attention in (model.content_branch.text_to_region, model.content_branch.region_to_text):
        attention.value.weight.data.zero_()


def _denoising_off(model: MDRCHCA, draw: int) -> None:
    """a = sigmoid(alpha) = 0 in both self-attention denoisers: T~ = T."""
    for denoiser in (model.content_branch.text_denoiser, model.content_branch.region_denoiser):
        denoiser.alpha.data.fill_(-1e4)


def _content_off(model: MDRCHCA, draw: int) -> None:
    """f_i = 0 for every item: the model recommends from its collaborative branch alone. The fusion that both
    routes of the content branch end in (the forward and the short scoring pass) returns zeros."""
    branch = model.content_branch
    fuse = branch._fused

    def zero_fused(*args, **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
        fused, gate = fuse(*args, **kwargs)
        return torch.zeros_like(fused), gate

    branch._fused = zero_fused


def probes_for(model: MDRCHCA) -> list[Probe]:
    """The probes that apply to ``model``'s configuration, in the order of the table."""
    cfg = model.config
    probes = [Probe("alignment W_Q, W_K re-randomised", _rerandomise_alignment, random=True)]
    if cfg.alignment == "hierarchical":
        probes.append(Probe("dense alignment (variant A's path)", _set_config(alignment="full")))
    else:
        probes.append(Probe("hierarchical alignment (the full model's path)", _set_config(alignment="hierarchical")))
    if cfg.confidence_fusion == "screen":
        probes.append(Probe("screen out of the fusion (soft weights kept)", _set_config(confidence_fusion="soft")))
    if cfg.confidence_fusion != "none":
        probes.append(Probe("confidence weights out of the fusion", _set_config(confidence_fusion="none")))
    if cfg.confidence_gate != "none":
        probes.append(Probe(f"{cfg.confidence_gate} gate off", _set_config(confidence_gate="none")))
    if cfg.confidence_fusion != "none" or cfg.confidence_gate != "none":
        probes.append(
            Probe("every confidence out of the fusion", _set_config(confidence_fusion="none", confidence_gate="none"))
        )
    probes += [
        Probe("cross-modal value term removed", _zero_cross_modal_values),
        Probe("self-attention denoising off", _denoising_off),
        Probe("all content off (f = 0)", _content_off),
    ]
    return probes

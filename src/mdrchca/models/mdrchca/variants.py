"""The two variants of the paper's *Ablation Study*: A without the hierarchy, B without the confidence."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mdrchca.models.base import register
from mdrchca.models.mdrchca.config import MDRCHCAConfig
from mdrchca.models.mdrchca.model import MDRCHCA


@dataclass
class MDRCHCAAConfig(MDRCHCAConfig):
    alignment: Literal["hierarchical", "full"] = "full"
    """Variant A: dense full cross-attention between all tokens and all regions, in both directions; the
    top-k_s screening of the attention weights and the phrase-region similarity in the image confidence stay
    (only the hierarchy's candidate restriction goes)."""


@register
class MDRCHCAVariantA(MDRCHCA):
    """MDR-CHCA-A: no hierarchy; dense full cross-attention between all tokens and regions (the paper's *Ablation
    Study*), with
    top-k_s screening and the phrase-region term of the image confidence kept."""

    name = "mdrchca_a"
    ablations = {}  # the variants are themselves ablations of mdrchca
    config_class = MDRCHCAAConfig


@dataclass
class MDRCHCABConfig(MDRCHCAConfig):
    contrastive: Literal["confidence", "standard"] = "standard"
    """Variant B: plain InfoNCE without confidence."""
    confidence_fusion: Literal["none", "soft", "screen"] = "none"
    """Variant B has no confidence evaluation, so nothing of it reaches the fusion either."""
    confidence_gate: Literal["none", "item", "image"] = "none"
    """Variant B: no item gate (it would read the confidences B does not have)."""


@register
class MDRCHCAVariantB(MDRCHCA):
    """MDR-CHCA-B: no confidence evaluation; plain InfoNCE over token-to-best-region pairs (every pair positive,
    weight 1, the same negatives from other items) and the fusion's plain means."""

    name = "mdrchca_b"
    ablations = {}
    config_class = MDRCHCABConfig

"""MDR-CHCA as a package: one small module per part of the method, each with its equation in the docstring.

- :mod:`.config`: the hyperparameters (every ambiguous point of the paper an option; docs/model.md);
- :mod:`.content`: the content branch (inputs, item graphs, denoising, alignment, confidences, fusion);
- :mod:`.denoising`, :mod:`.alignment`, :mod:`.confidence`: its parts (the paper's sections from *Multi-modal feature
encoding and denoising* to *Confidence Evaluation*);
- :mod:`.screen`, :mod:`.losses`: the confidence screen and the confidence-weighted InfoNCE (§7);
- :mod:`.model`: the recommender (collaborative branch, content propagation and cache, losses);
- :mod:`.variants`: the paper's ablations A and B (§9).
"""

from mdrchca.models.mdrchca.config import MDRCHCAConfig
from mdrchca.models.mdrchca.content import ContentBranch, ContentOutput
from mdrchca.models.mdrchca.model import MDRCHCA
from mdrchca.models.mdrchca.variants import MDRCHCAAConfig, MDRCHCABConfig, MDRCHCAVariantA, MDRCHCAVariantB

__all__ = [
    "MDRCHCA",
    "ContentBranch",
    "ContentOutput",
    "MDRCHCAAConfig",
    "MDRCHCABConfig",
    "MDRCHCAConfig",
    "MDRCHCAVariantA",
    "MDRCHCAVariantB",
]

"""Cross-modal audit: every item's confidence that its text and image agree, lowest first."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mdrchca.data.dataset import RecDataset
from mdrchca.errors import MdrchcaError

AUDIT_SCORES = ("confidence", "pair_confidence", "image_confidence", "alignment_similarity")


def audit_items(model, dataset: RecDataset, by: str = "confidence") -> pd.DataFrame:
    """One row per item: ``itemID, confidence`` (mean text confidence c^t_w over its tokens), the mean pair
    confidence c^t_w c^v_p*, the mean image confidence, the mean token-to-best-region cosine, whether each
    modality is present and the item's training interactions; sorted by ``by``, lowest first (items
    missing a modality last). See ``MDRCHCA.item_confidence``."""
    if by not in AUDIT_SCORES:
        raise MdrchcaError(f"cannot rank by {by!r}; choose one of {', '.join(AUDIT_SCORES)}")
    if not hasattr(model, "item_confidence"):
        raise MdrchcaError(f"model '{model.name}' has no cross-modal confidence; audit a MDR-CHCA run")
    scores = model.item_confidence()
    text_name, region_name = model.modality_names
    frame = pd.DataFrame(
        {
            "itemID": np.arange(dataset.n_items),
            **scores,
            f"has_{text_name}": dataset.features[text_name].mask.any(1).numpy(),
            f"has_{region_name}": dataset.features[region_name].mask.any(1).numpy(),
            "train_interactions": np.diff(dataset.matrix("train").tocsc().indptr),
        }
    )
    return frame.sort_values(by, kind="stable", na_position="last").reset_index(drop=True)


def roc_auc(scores: np.ndarray, positives: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` ranking ``positives`` first (Mann-Whitney, ties count half)."""
    from scipy.stats import rankdata

    scores = np.asarray(scores, dtype=np.float64)
    positives = np.asarray(positives, dtype=bool)
    n_pos, n_neg = positives.sum(), (~positives).sum()
    if n_pos == 0 or n_neg == 0:
        raise ValueError("AUC needs both positive and negative items")
    ranks = rankdata(scores)
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def mismatch_auc(frame: pd.DataFrame, truth_file: Path, column: str = "confidence") -> float:
    """AUC of low ``column`` at finding the planted mismatched items of ``ground_truth.tsv``."""
    return mismatch_aucs(frame, truth_file, (column,))[column]


def mismatch_aucs(frame: pd.DataFrame, truth_file: Path, columns: tuple[str, ...] = AUDIT_SCORES) -> dict[str, float]:
    """:func:`mismatch_auc` for several columns, reading the ground truth once."""
    merged = frame.merge(pd.read_csv(truth_file, sep="\t")[["itemID", "mismatched"]], on="itemID")
    out = {}
    for column in columns:
        rows = merged.dropna(subset=[column])
        out[column] = roc_auc(-rows[column].to_numpy(), rows["mismatched"].to_numpy() == 1)
    return out

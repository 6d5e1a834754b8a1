"""Cross-modal audit: every item's confidence that its text and image agree, lowest first."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mdrchca.config import DataConfig
from mdrchca.data.dataset import RecDataset
from mdrchca.errors import MdrchcaError
from mdrchca.models.mdrchca.readout import CrossModalReadout

AUDIT_SCORES = ("confidence", "pair_confidence", "image_confidence", "alignment_similarity", "agreement")
AGREEMENT_ALPHAS = (1.0, 3.0, 10.0, 30.0, 100.0, 300.0)


def _unit_rows(x: np.ndarray) -> np.ndarray:
    x = x - x.mean(0)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def cross_fitted_agreement(
    source: np.ndarray,
    target: np.ndarray,
    folds: int = 5,
    alphas: tuple[float, ...] = AGREEMENT_ALPHAS,
    seed: int = 0,
) -> tuple[np.ndarray, float]:
    r"""How well each item's ``source`` vector (its image) predicts its ``target`` vector (its text), learned
    from the *other* items: an addition to the paper, trained on the item level.

    Rows are centred and scaled to unit norm; the items are split into ``folds``; for each fold a ridge map
    :math:`W = (X^\top X + \alpha I)^{-1} X^\top Y` is fitted on the other folds and the item's agreement is
    :math:`\cos(x_i W, y_i)`, so no item's own pair ever trains its score (a memorised swap would otherwise
    look like agreement). :math:`\alpha` is chosen among ``alphas`` by the out-of-fold squared error of the
    prediction, never by any knowledge of which items are corrupted. Returns the scores and the alpha.
    """
    x, y = _unit_rows(np.asarray(source, np.float64)), _unit_rows(np.asarray(target, np.float64))
    fold = np.random.default_rng(seed).integers(0, folds, len(x))
    # each fold's Gram matrix and cross-product, shared by every alpha
    fitted = [(fold == f, x[fold != f].T @ x[fold != f], x[fold != f].T @ y[fold != f]) for f in range(folds)]
    identity = np.eye(x.shape[1])
    best: tuple[float, np.ndarray, float] | None = None
    for alpha in alphas:
        prediction = np.zeros_like(y)
        for held, gram, cross in fitted:
            prediction[held] = x[held] @ np.linalg.solve(gram + alpha * identity, cross)
        error = float(((prediction - y) ** 2).sum())
        if best is None or error < best[0]:
            best = (error, prediction, alpha)
    assert best is not None
    _, prediction, alpha = best
    unit = prediction / np.maximum(np.linalg.norm(prediction, axis=1, keepdims=True), 1e-12)
    return (unit * y).sum(1), alpha


def audit_items(model, dataset: RecDataset, by: str = "agreement") -> pd.DataFrame:
    """One row per item: ``itemID, confidence`` (mean text confidence c^t_w over its tokens), the mean pair
    confidence c^t_w c^v_p*, the mean image confidence, the mean token-to-best-region cosine (see
    ``MDRCHCA.item_confidence``), ``agreement`` (:func:`cross_fitted_agreement` of the item's image and text
    vectors: an addition to the paper), whether each modality is present and the item's training
    interactions; sorted by ``by``, lowest first (items missing a modality last)."""
    if by not in AUDIT_SCORES:
        raise MdrchcaError(f"cannot rank by {by!r}; choose one of {', '.join(AUDIT_SCORES)}")
    if not isinstance(model, CrossModalReadout):
        raise MdrchcaError(f"model '{model.name}' has no cross-modal confidence; audit a MDR-CHCA run")
    scores = model.item_confidence().columns()
    text_name, region_name = model.modality_names
    text, regions = dataset.features[text_name], dataset.features[region_name]
    both = (text.mask.any(1) & regions.mask.any(1)).numpy()
    agreement = np.full(dataset.n_items, np.nan)
    if both.sum() > 10:
        agreement[both], _ = cross_fitted_agreement(
            regions.item_vectors[both].float().numpy(), text.item_vectors[both].float().numpy()
        )
    scores["agreement"] = agreement
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


def corrupted_ground_truth(config: DataConfig, n_items: int, modalities: tuple[str, ...]) -> np.ndarray | None:
    """The ids of the items whose features a run's ``feature_noise`` corrupted (swapped, noised or dropped) in
    one of ``modalities``, or None when it corrupted none: the ground truth of an audit of that run."""
    if config.feature_noise == "none" or config.noise_modality not in modalities:
        return None
    from mdrchca.data.noise import corrupted_items

    return corrupted_items(n_items, config.noise_level, config.noise_seed)


def audit_ground_truth(
    config: DataConfig, dataset: RecDataset, modalities: tuple[str, ...]
) -> tuple[Path | np.ndarray, str] | None:
    """What an audit of a run can be scored against, and its description: the items the run's
    ``feature_noise`` corrupted (:func:`corrupted_ground_truth`), else the catalogue's own
    ``ground_truth.tsv`` (the bundled generator's planted mismatches), else None."""
    corrupted = corrupted_ground_truth(config, dataset.n_items, modalities)
    if corrupted is not None:
        return corrupted, f"the items whose {config.noise_modality} the run's feature_noise corrupted"
    planted = dataset.path / "ground_truth.tsv" if dataset.path is not None else None
    if planted is not None and planted.is_file():
        return planted, "planted mismatches"
    return None


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


def mismatch_aucs(
    frame: pd.DataFrame, truth: Path | np.ndarray, columns: tuple[str, ...] = AUDIT_SCORES
) -> dict[str, float]:
    """:func:`mismatch_auc` for several columns, reading the ground truth once: a ``ground_truth.tsv`` (the
    bundled generator's) or the ids of the mismatched items (:func:`corrupted_ground_truth`)."""
    if isinstance(truth, Path):
        known = pd.read_csv(truth, sep="\t")[["itemID", "mismatched"]]
    else:
        known = pd.DataFrame({"itemID": frame["itemID"], "mismatched": frame["itemID"].isin(truth).astype(int)})
    merged = frame.merge(known, on="itemID")
    out = {}
    for column in columns:
        rows = merged.dropna(subset=[column])
        out[column] = roc_auc(-rows[column].to_numpy(), rows["mismatched"].to_numpy() == 1)
    return out

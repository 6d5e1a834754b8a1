"""Variants of the audit's ``agreement`` score at finding ML-100K's swapped posters (no training needed).

Usage: python docs/results/session24-tried/agreement_variants.py   (data/ml100k and data/ml100k-64 from
``mdrchca features`` and ``mdrchca data reduce``, docs/features.md)

The posters of 20% and 40% of the films are swapped among themselves as ``feature_noise=swap`` does (seed 0), and
each score ranks the films, lowest first; AUC of finding the swapped ones. ``img->txt`` is the audit's
``agreement`` (cross-fitted ridge from the image vector to the text vector, ``cross_fitted_agreement``);
``txt->img`` the other direction, ``both`` their sum; ``csls`` corrects each prediction's cosine by the mean of
its 10 nearest texts and of the text's 10 nearest predictions (hubness); ``rank`` is the rank of the film's own
text among every text; ``img->cf`` predicts a film's collaborative factors (a 32- or 64-dimensional truncated
SVD of the normalised training matrix) instead of its text, ``img->[txt,cf]`` both at once, ``z-sum`` the sum of
the standardised ``img->txt`` and ``img->cf`` scores; ``trimmed S`` refits ``img->txt`` twice on the share S of
the films that scored highest in the round before (a robust fit against the swapped films).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import svds

from mdrchca.data import load_dataset
from mdrchca.data.noise import corrupted_items
from mdrchca.experiments.audit import _unit_rows, cross_fitted_agreement, roc_auc


def swapped(images: np.ndarray, level: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    chosen = corrupted_items(len(images), level, seed)
    images = images.copy()
    images[chosen] = images[np.roll(chosen, -1)]
    truth = np.zeros(len(images), dtype=bool)
    truth[chosen] = True
    return images, truth


def neighbourhood_scores(source: np.ndarray, target: np.ndarray, k: int = 10, folds: int = 5) -> dict:
    x, y = _unit_rows(source.astype(np.float64)), _unit_rows(target.astype(np.float64))
    _, alpha = cross_fitted_agreement(x, y)
    fold = np.random.default_rng(0).integers(0, folds, len(x))
    prediction = np.zeros_like(y)
    for f in range(folds):
        train = fold != f
        weights = np.linalg.solve(x[train].T @ x[train] + alpha * np.eye(x.shape[1]), x[train].T @ y[train])
        prediction[fold == f] = x[fold == f] @ weights
    prediction /= np.linalg.norm(prediction, axis=1, keepdims=True)
    similarity = prediction @ (y / np.linalg.norm(y, axis=1, keepdims=True)).T
    own = np.diag(similarity)
    dense_rows = np.sort(similarity, 1)[:, -k:].mean(1)
    dense_cols = np.sort(similarity, 0)[-k:, :].mean(0)
    return {"csls": 2 * own - dense_rows - dense_cols, "rank": -(similarity > own[:, None]).sum(1)}


def trimmed_agreement(source: np.ndarray, target: np.ndarray, keep: float, rounds: int = 2, folds: int = 5):
    x, y = _unit_rows(source.astype(np.float64)), _unit_rows(target.astype(np.float64))
    score, alpha = cross_fitted_agreement(x, y)
    fold = np.random.default_rng(0).integers(0, folds, len(x))
    for _ in range(rounds):
        kept = score >= np.quantile(score, 1 - keep)
        prediction = np.zeros_like(y)
        for f in range(folds):
            train = (fold != f) & kept
            weights = np.linalg.solve(x[train].T @ x[train] + alpha * np.eye(x.shape[1]), x[train].T @ y[train])
            prediction[fold == f] = x[fold == f] @ weights
        prediction /= np.linalg.norm(prediction, axis=1, keepdims=True)
        score = (prediction * y).sum(1)
    return score


def main() -> None:
    train = load_dataset("data/ml100k-64").matrix("train").tocsr().astype(np.float64)
    users = np.maximum(np.asarray(train.sum(1)).ravel(), 1)
    items = np.maximum(np.asarray(train.sum(0)).ravel(), 1)
    normalised = sp.diags(1 / np.sqrt(users)) @ train @ sp.diags(1 / np.sqrt(items))
    for folder in ("data/ml100k-64", "data/ml100k"):
        clean, text = np.load(f"{folder}/image_feat.npy"), np.load(f"{folder}/text_feat.npy")
        for level in (0.2, 0.4):
            images, truth = swapped(clean, level)
            forward, _ = cross_fitted_agreement(images, text)
            backward, _ = cross_fitted_agreement(text, images)
            scores = {"img->txt": forward, "txt->img": backward, "both": forward + backward}
            scores.update({f"img->txt {k}": v for k, v in neighbourhood_scores(images, text).items()})
            for factors in (32, 64):
                _, s, vt = svds(normalised, k=factors)
                cf = vt.T * s
                to_cf, _ = cross_fitted_agreement(images, cf)
                scores[f"img->cf{factors}"] = to_cf
                scores[f"img->[txt,cf{factors}]"], _ = cross_fitted_agreement(
                    images, np.hstack([_unit_rows(text), _unit_rows(cf)])
                )
                scores[f"z-sum cf{factors}"] = (forward - forward.mean()) / forward.std() + (
                    to_cf - to_cf.mean()
                ) / to_cf.std()
            for keep in (0.9, 0.7, 0.5):
                scores[f"trimmed {keep}"] = trimmed_agreement(images, text, keep)
            aucs = {name: round(roc_auc(-score, truth), 3) for name, score in scores.items()}
            print(f"{folder} posters swapped {level:.0%}: {aucs}")


if __name__ == "__main__":
    main()

"""Reference for the item cold-start split: rank new items by frozen content alone, no training.

Usage: python benchmarks/cold_start_content_profile.py DATASET_DIR [--split-seed 999]

Each user's profile per modality is the mean of the unit item vectors of their training items; a new item
scores the cosine of its unit vector with that profile, averaged over modalities (a Rocchio / content-kNN
baseline). Evaluated like every model on ``split_mode=cold_items`` (each split ranked among its own items),
so a trained model's cold-start numbers can be read against what the raw features give by themselves.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from mdrchca.config import DataConfig
from mdrchca.data import load_dataset
from mdrchca.evaluation import Evaluator


class ContentProfile(nn.Module):
    """Scores ``mean_m cos(profile_u^m, x_i^m)`` with ``profile_u^m`` the mean of u's training items' x^m."""

    def __init__(self, train: sp.csr_matrix, vectors: list[torch.Tensor]) -> None:
        super().__init__()
        counts = np.maximum(np.diff(train.indptr), 1)
        mean = sp.diags(1.0 / counts) @ train
        self.units = [nn.functional.normalize(v.float(), dim=1) for v in vectors]
        self.profiles = [
            nn.functional.normalize(torch.from_numpy(np.asarray(mean @ u.numpy(), dtype=np.float32)), dim=1)
            for u in self.units
        ]
        self.anchor = nn.Parameter(torch.zeros(1))  # the evaluator reads the device from a parameter

    def score_all(self, users: torch.Tensor) -> torch.Tensor:
        return sum(p[users] @ u.T for p, u in zip(self.profiles, self.units, strict=True)) / len(self.units)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data")
    parser.add_argument("--split-seed", type=int, default=999)
    args = parser.parse_args()
    config = DataConfig(split_mode="cold_items", split_seed=args.split_seed, feature_level="item")
    data = load_dataset(args.data, config)
    model = ContentProfile(data.matrix("train"), [f.item_vectors for f in data.features.values()])
    evaluator = Evaluator(data, (10, 20, 50))
    result = {split: evaluator.evaluate(model, split) for split in ("valid", "test")}
    print(json.dumps({"dataset": data.name, "modalities": data.modalities, **result}, indent=2))


if __name__ == "__main__":
    main()

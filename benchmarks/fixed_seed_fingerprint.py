"""Fixed-seed fingerprint of every registered model, to check that a refactoring changed no behaviour.

Trains each model a few epochs on one dataset with one seed and one thread, in memory, and prints one JSON
line per model: its validation and test metrics at full precision and a SHA-256 of its trained state.
Run it before and after a change that should move code only, and compare the two outputs with ``diff``:

    python benchmarks/fixed_seed_fingerprint.py --data data/bundled > before.jsonl
    # ... the refactoring ...
    python benchmarks/fixed_seed_fingerprint.py --data data/bundled > after.jsonl
    diff before.jsonl after.jsonl && echo identical
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging

import torch

import mdrchca
from mdrchca.data import load_dataset
from mdrchca.models import MODEL_REGISTRY
from mdrchca.training import Trainer


def state_digest(model: torch.nn.Module) -> str:
    """SHA-256 over the model's state (names, shapes and bytes, in order)."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="dataset folder (token / region features for MDR-CHCA)")
    parser.add_argument("--models", default="", help="comma-separated; default every registered model")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=999)
    parser.add_argument("--set", action="append", default=[], help="extra override for every model")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(1)
    models = [m for m in args.models.split(",") if m] or sorted(MODEL_REGISTRY)
    for name in models:
        config = mdrchca.Config.load(
            name, overrides=[f"epochs={args.epochs}", f"seed={args.seed}", "num_threads=1", "device=cpu", *args.set]
        )
        config.data.data_path = args.data
        dataset = load_dataset(args.data, config.data)
        trainer = Trainer(config, dataset, progress=False)
        result = trainer.fit()
        losses = [row["loss"] for row in result.history]
        print(
            json.dumps(
                {
                    "model": name,
                    "losses": [float.hex(float(v)) for v in losses],
                    "valid": {k: float.hex(v) for k, v in sorted(result.valid.items())},
                    "test": {k: float.hex(v) for k, v in sorted(result.test.items())},
                    "state_sha256": state_digest(trainer.model),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()

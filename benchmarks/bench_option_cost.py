"""MDR-CHCA's epoch as trained under one or more option settings, against LightGCN's, alternated in one process.

Usage: python benchmarks/bench_option_cost.py --data data/ml100k-64 --variant conf_pairs=256 \
           --variant conf_pairs=512 [--rounds 6] [--warm-up 10]

Builds a LightGCN trainer, an MDR-CHCA trainer at its defaults and one per ``--variant`` (comma-separated
``key=value`` overrides), all with the same seed on one thread. Each trainer first trains ``--warm-up`` untimed
epochs (validation after each, as ``fit`` runs), so that what an option changes is timed in the state a run spends
most of its epochs in, not only in the first epoch. Then each round times one epoch as trained (training, then the
validation pass) of every trainer in turn; the machine's drift falls on all of them, so ratios are taken round by
round (each MDR-CHCA setting against the same round's LightGCN, and against the same round's default) and their
medians kept. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_epoch_cost import cpu_trainer, epoch_as_trained  # noqa: E402
from mdrchca.data import load_dataset  # noqa: E402


def alternate(data_path: str, variants: list[str], rounds: int, warm_up: int) -> dict:
    """The per-round seconds of every trainer and the median ratios (see the module's docstring)."""
    torch.set_num_threads(1)
    data = load_dataset(data_path)
    epochs = f"epochs={warm_up + rounds + 1}"
    settings = {"lightgcn": ("lightgcn", ()), "default": ("mdrchca", ())}
    for variant in variants:
        settings[variant] = ("mdrchca", tuple(variant.split(",")))
    trainers = {name: cpu_trainer(model, data, epochs, *overrides) for name, (model, overrides) in settings.items()}
    for trainer in trainers.values():
        trainer.epoch = 0
        for _ in range(warm_up + 1):
            epoch_as_trained(trainer)
    seconds: dict[str, list[float]] = {name: [] for name in trainers}
    for _ in range(rounds):
        for name, trainer in trainers.items():
            seconds[name].append(epoch_as_trained(trainer))
    out: dict = {"data": data_path, "rounds": rounds, "warm_up_epochs": warm_up}
    for name, values in seconds.items():
        row = {"by_round_s": [round(x, 3) for x in values], "median_s": round(statistics.median(values), 3)}
        if name != "lightgcn":
            ratios = [x / lg for x, lg in zip(values, seconds["lightgcn"], strict=True)]
            row["ratio_to_lightgcn"] = round(statistics.median(ratios), 2)
            row["ratio_to_lightgcn_range"] = [round(min(ratios), 2), round(max(ratios), 2)]
        if name not in ("lightgcn", "default"):
            speed_up = [d / x for x, d in zip(values, seconds["default"], strict=True)]
            row["speed_up_over_default"] = round(statistics.median(speed_up), 3)
            row["speed_up_range"] = [round(min(speed_up), 3), round(max(speed_up), 3)]
        out[name] = row
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="dataset folder (made by mdrchca features)")
    parser.add_argument("--variant", action="append", default=[], help="key=value[,key=value]: one MDR-CHCA setting")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--warm-up", type=int, default=10, help="untimed epochs of every trainer before the rounds")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error(f"--rounds {args.rounds}: give at least 1")
    if args.warm_up < 0:
        parser.error(f"--warm-up {args.warm_up}: give 0 or more epochs")
    print(json.dumps(alternate(args.data, args.variant, args.rounds, args.warm_up)))


if __name__ == "__main__":
    main()

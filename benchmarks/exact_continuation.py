"""Does the step budget hold a converged MDR-CHCA run back? Continue it from its best epoch with the exact path.

Usage: python benchmarks/exact_continuation.py RUN --epochs 10 [--out FILE.json] [--control-epochs 2]

MDR-CHCA's default step recomputes with gradients the content of a budget of items (``content_grad_positions``)
and fits the others against a cached content; the exact path (``content_grad_items=0``) recomputes every item's
content with gradients at every step and costs about a minute and a half per ML-100K epoch on one thread, so a
run to convergence (five hours a seed) is out of reach on the CPU. This measures the budget's cost where it
matters, at the budget's own optimum: the run's best checkpoint (model, Adam's moments, the sampler and the
random state) is loaded into a trainer with the exact path, which trains ``--epochs`` more epochs, validating after
each. The budget's own continuation from the same state is the run itself (the same batches, the same random
draws): ``--control-epochs`` epochs of it are replayed here and checked against the run's ``log.csv``, which shows
that the continuation starts where the run stood. If the exact path finds a better validation R@20 than the
budget ever reached, by more than the seed spread, the budget holds the run back near its optimum; if not, the
approximation costs nothing measurable there (a local bound: a run trained exactly from the start is not measured).

Prints and writes one JSON object: per epoch the exact path's validation R@20 and seconds, the run's own
validation R@20 at the same epochs (its ``log.csv``), the best of each, and the control's check.
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import logging
import time
from pathlib import Path

import torch

from mdrchca.io import write_text
from mdrchca.training import Trainer
from mdrchca.training.api import Run, load_run
from mdrchca.training.checkpoint import load_checkpoint
from mdrchca.training.trainer import STATE_KEYS


def run_log(run: Path) -> dict[int, float]:
    """Validation R@20 by epoch from a run's ``log.csv``."""
    with (run / "log.csv").open(encoding="utf-8") as handle:
        return {int(row["epoch"]): float(row["valid_recall@20"]) for row in csv.DictReader(handle)}


def continued(run: Run, epochs: int, overrides: dict[str, object]) -> tuple[list[dict], float]:
    """``epochs`` more epochs of the opened ``run`` from its best checkpoint, with ``overrides`` on its config, in
    memory; the history rows after the best epoch and the seconds they took."""
    config = copy.deepcopy(run.config)
    best = run.path / "best.pt"
    state = load_checkpoint(best, "cpu", required=STATE_KEYS)  # per continuation: the trainer takes its tensors
    best_epoch = int(state["epoch"])
    config.set("epochs", best_epoch + epochs)
    config.set("patience", epochs + 1)
    config.set("num_threads", 1)
    for key, value in overrides.items():
        config.set(key, value)
    trainer = Trainer(config, run.dataset, progress=False, evaluate_test=False)
    trainer.load_state(state, best)
    start = time.perf_counter()
    trainer.fit()
    seconds = time.perf_counter() - start
    return [row for row in trainer.history if row["epoch"] > best_epoch], seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="a finished MDR-CHCA run folder (best.pt, log.csv)")
    parser.add_argument("--epochs", type=int, default=10, help="epochs of the exact path after the best epoch")
    parser.add_argument("--control-epochs", type=int, default=2, help="epochs of the budget's own replay (0: none)")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args()
    if args.epochs < 1:
        parser.error(f"--epochs {args.epochs}: give at least 1")
    if args.control_epochs < 0:
        parser.error(f"--control-epochs {args.control_epochs}: give 0 or more")
    if not (args.run / "best.pt").is_file() or not (args.run / "log.csv").is_file():
        parser.error(f"{args.run}: not a finished run folder (best.pt and log.csv); pass a run that mdrchca trained")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")  # the trainer's line per epoch
    torch.set_num_threads(1)
    logged = run_log(args.run)
    opened = load_run(args.run)  # its config and its exact split, read once for both continuations
    out: dict = {"run": str(args.run)}
    if args.control_epochs:
        rows, _ = continued(opened, args.control_epochs, {})
        out["control"] = [
            {"epoch": int(r["epoch"]), "replayed": r["valid_recall@20"], "logged": logged.get(int(r["epoch"]))}
            for r in rows
        ]
        out["control_matches_log"] = all(
            c["logged"] is not None and abs(c["replayed"] - c["logged"]) < 1e-9 for c in out["control"]
        )
    rows, seconds = continued(opened, args.epochs, {"content_grad_items": 0})
    best_epoch = int(rows[0]["epoch"]) - 1
    out["best_epoch"] = best_epoch
    out["budget_best_valid"] = logged[best_epoch]
    out["exact"] = [
        {
            "epoch": int(r["epoch"]),
            "valid_recall@20": r["valid_recall@20"],
            "budget_valid_recall@20": logged.get(int(r["epoch"])),
            "train_seconds": round(r["train_seconds"], 1),
        }
        for r in rows
    ]
    out["exact_best_valid"] = max(r["valid_recall@20"] for r in rows)
    out["exact_over_budget_best"] = out["exact_best_valid"] / out["budget_best_valid"] - 1
    out["seconds"] = round(seconds, 1)
    text = json.dumps(out)
    print(text)
    if args.out is not None:
        write_text(args.out, text + "\n")


if __name__ == "__main__":
    main()

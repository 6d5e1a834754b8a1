"""How much MDR-CHCA's confidence screen swings, from finished runs' ``log.csv``.

Usage: python benchmarks/screen_swing.py RUN [RUN ...] [--after 5]

For each run folder: the largest change of each screen share (``pos_share``, ``noisy_share``,
``unused_share``) from one epoch to the next after epoch ``--after`` (issue 21's goal: at most 0.2), whether
every epoch kept three classes (an unused share above 0 and theta_neg below theta_pos), and L_conf at the
first, the best and the last epoch.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from mdrchca.errors import MdrchcaError
from mdrchca.experiments.report import screen_logs
from mdrchca.training.run_folder import RunFolder

SHARES = ("pos_share", "noisy_share", "unused_share")


def swing(label: str, log: pd.DataFrame, best_epoch: int, after: int) -> str:
    """One line for a run's ``log`` (the screen's columns, one row per epoch)."""
    largest = {share: log[share].diff().abs().iloc[after + 1 :].max() for share in SHARES}
    three = bool(((log["unused_share"] > 0) & (log["theta_neg"] < log["theta_pos"])).all())
    conf = log.set_index("epoch")["loss_conf"]
    changes = " ".join(f"{share.removesuffix('_share')} {largest[share]:.3f}" for share in SHARES)
    return (
        f"{label}: {changes}; "
        f"three classes every epoch: {three}; L_conf epoch 1 {conf.iloc[0]:.3f}, "
        f"best epoch {best_epoch} {conf[best_epoch]:.3f}, last {conf.iloc[-1]:.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--after", type=int, default=5, help="first epoch whose change to the next counts")
    args = parser.parse_args()
    for run in args.runs:
        try:
            best_epoch = RunFolder(run).read_metrics()["best_epoch"]
            (log,) = screen_logs([run]).values()
        except MdrchcaError as error:
            sys.exit(f"error: {error}")
        print(swing(run.name, log, best_epoch, args.after))


if __name__ == "__main__":
    main()

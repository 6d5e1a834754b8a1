"""A results table over run folders, read from each run's ``metrics.json``."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from mdrchca.errors import MdrchcaError
from mdrchca.training.run_folder import LOG_FILE, METRICS_FILE, RunFolder

DEFAULT_COLUMNS = ("recall@20", "ndcg@20", "precision@20")
DIAGNOSTICS = ("pos_share", "noisy_share", "unused_share", "theta_pos", "theta_neg", "loss_conf")
"""MDR-CHCA's per-epoch confidence-screen columns of ``log.csv`` that ``--diagnostics`` shows."""


def results_table(
    run_dirs: list[Path],
    metrics: tuple[str, ...] = DEFAULT_COLUMNS,
    split: str = "test",
    diagnostics: bool = False,
) -> pd.DataFrame:
    """One row per run: model, dataset (marked when its split is an item cold start), the validation value
    of the first metric (what model selection looks at), the chosen ``split`` metrics, best epoch, epochs,
    seconds per epoch; with ``diagnostics``, the model's ``log.csv`` diagnostics at the best epoch."""
    rows = []
    for run_dir in run_dirs:
        folder = RunFolder(run_dir)
        m = folder.read_metrics()
        missing = [k for k in metrics if k not in m[split]]
        if missing:
            path = folder.file(METRICS_FILE)
            raise MdrchcaError(f"{path}: no {', '.join(missing)} in {split}; re-run with those K in topk")
        rows.append(
            {
                "run": Path(run_dir).name,
                "model": m["model"],
                "dataset": m["dataset"] + (" (cold items)" if m.get("split") == "cold_items" else ""),
                f"valid {metrics[0]}": m["valid"].get(metrics[0]),
                **{f"{split} {k}": m[split][k] for k in metrics},
                "best epoch": m["best_epoch"],
                "epochs": m["epochs"],
                "s/epoch": m.get("seconds_per_epoch"),
                **(_diagnostics(Path(run_dir), m["best_epoch"]) if diagnostics else {}),
            }
        )
    return pd.DataFrame(rows)


def _diagnostics(run_dir: Path, epoch: int) -> dict[str, float]:
    """The ``log.csv`` diagnostics of ``epoch`` (empty for a model that logs none)."""
    folder = RunFolder(run_dir)
    if not folder.file(LOG_FILE).is_file():
        return {}
    log = folder.read_log()
    row = log[log["epoch"] == epoch]
    if row.empty:
        return {}
    return {name: float(row[name].iloc[0]) for name in DIAGNOSTICS if name in log.columns}


def to_markdown(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table, floats to four decimals, missing values as a dash."""
    shown = frame.astype(object).where(frame.notna(), None)  # tabulate's missingval applies to None, not NaN
    return shown.to_markdown(index=False, floatfmt=".4f", missingval="—")


def screen_logs(run_dirs: list[Path]) -> dict[str, pd.DataFrame]:
    """Each run's ``log.csv`` with the confidence-screen columns, labelled by the run folder's path below the
    runs' common folder, for :func:`~mdrchca.experiments.figures.screen_figure`; a run that logs no screen is
    refused by name."""
    common = Path(os.path.commonpath([str(Path(r).resolve()) for r in run_dirs])) if len(run_dirs) > 1 else None
    logs = {}
    for run_dir in run_dirs:
        folder = RunFolder(run_dir)
        path = folder.file(LOG_FILE)
        log = folder.read_log()
        if "pos_share" not in log.columns:
            raise MdrchcaError(f"{path}: no confidence-screen columns (pos_share...); pass MDR-CHCA runs")
        label = str(Path(run_dir).resolve().relative_to(common)) if common else Path(run_dir).name
        logs[label if len(label) <= 48 else "…" + label[-47:]] = log
    return logs

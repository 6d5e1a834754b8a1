"""The paper's figures from a grid's runs (matplotlib, PNG and SVG, error bars = standard deviation over seeds).

- :func:`sweep_figures`: test R@20 and N@20 against each swept parameter, one line per dataset (figures 4-5);
- :func:`ablation_figure`: grouped bars of the full model and its variants per dataset and metric (figure 3);
- :func:`robustness_figure`: test R@20 against the corrupted share of items, one line per model.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display, no GUI toolkit

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from mdrchca.experiments.tables import short, summarize  # noqa: E402
from mdrchca.io import write_with  # noqa: E402

FIGURE_METRICS = ("recall@20", "ndcg@20")


def save(figure: plt.Figure, stem: Path) -> list[Path]:
    """Write ``stem.png`` (150 dpi) and ``stem.svg`` atomically and close the figure."""
    paths = []
    for suffix, options in ((".png", {"dpi": 150}), (".svg", {})):
        path = stem.with_suffix(suffix)
        write_with(path, lambda p, o=options: figure.savefig(p, bbox_inches="tight", **o))
        paths.append(path)
    plt.close(figure)
    return paths


def _numeric(values: Sequence[str]) -> tuple[np.ndarray, bool]:
    try:
        return np.array([float(v) for v in values]), True
    except ValueError:
        return np.arange(len(values), dtype=float), False


def _error_line(ax: plt.Axes, x: np.ndarray, part: pd.DataFrame, metric: str, label: str) -> None:
    """One line of ``summarize``'s mean of ``metric`` against ``x`` (sorted), seed std as error bars."""
    order = np.argsort(x)
    mean, std = part[f"{metric} mean"].to_numpy(), part[f"{metric} std"].to_numpy()
    ax.errorbar(x[order], mean[order], yerr=std[order], marker="o", capsize=3, label=label)


def sweep_figures(frame: pd.DataFrame, out: Path, metrics: Sequence[str] = FIGURE_METRICS) -> list[Path]:
    """One figure per swept parameter (``sweep-<param>``), a panel per metric, a line per dataset."""
    written = []
    for param, rows in frame.groupby("param", sort=False):
        summary = summarize(rows, ["dataset", "value"], metrics)
        figure, axes = plt.subplots(
            1, len(metrics), figsize=(4.2 * len(metrics), 3.2), squeeze=False, layout="constrained"
        )
        for ax, metric in zip(axes[0], metrics, strict=True):
            for dataset, part in summary.groupby("dataset", sort=False):
                x, numeric = _numeric(list(part["value"]))
                _error_line(ax, x, part, metric, str(dataset))
                if not numeric:
                    ax.set_xticks(x, list(part["value"]))
            ax.set_xlabel(str(param))
            ax.set_ylabel(f"test {short(metric)}")
            ax.grid(alpha=0.3)
        axes[0][0].legend(fontsize=8)
        figure.suptitle(f"{rows['model'].iloc[0]}: {param}")
        written += save(figure, out / f"sweep-{param}")
    return written


def ablation_figure(frame: pd.DataFrame, out: Path, metrics: Sequence[str] = FIGURE_METRICS) -> list[Path]:
    """Grouped bars (``ablation``): a group per (dataset, metric), a bar per variant."""
    summary = summarize(frame, ["dataset", "variant"], metrics)
    variants = list(dict.fromkeys(frame["variant"]))
    groups = [(d, m) for d in dict.fromkeys(frame["dataset"]) for m in metrics]
    width = 0.8 / len(variants)
    figure, ax = plt.subplots(figsize=(max(4.5, 1.8 * len(groups)), 3.4), layout="constrained")
    for i, variant in enumerate(variants):
        means, stds = [], []
        for dataset, metric in groups:
            row = summary[(summary["dataset"] == dataset) & (summary["variant"] == variant)]
            means.append(float(row[f"{metric} mean"].iloc[0]) if not row.empty else np.nan)
            stds.append(float(row[f"{metric} std"].iloc[0]) if not row.empty else 0.0)
        positions = np.arange(len(groups)) + (i - (len(variants) - 1) / 2) * width
        ax.bar(positions, means, width, yerr=stds, capsize=3, label=variant)
    ax.set_xticks(np.arange(len(groups)), [f"{d}\n{short(m)}" for d, m in groups])
    ax.set_ylabel("test value")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return save(figure, out / "ablation")


def robustness_figure(frame: pd.DataFrame, out: Path, metric: str = "recall@20") -> list[Path]:
    """Test ``metric`` against the corrupted share (``robustness``): a panel per dataset, a line per model."""
    summary = summarize(frame, ["dataset", "model", "level"], [metric])
    datasets = list(dict.fromkeys(frame["dataset"]))
    noise = str(frame["noise"].iloc[0])
    figure, axes = plt.subplots(
        1, len(datasets), figsize=(4.4 * len(datasets), 3.3), squeeze=False, layout="constrained"
    )
    for ax, dataset in zip(axes[0], datasets, strict=True):
        for model, part in summary[summary["dataset"] == dataset].groupby("model", sort=False):
            _error_line(ax, part["level"].astype(float).to_numpy(), part, metric, str(model))
        ax.set_title(dataset)
        ax.set_xlabel(f"share of items with {noise} noise")
        ax.set_ylabel(f"test {short(metric)}")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    return save(figure, out / f"robustness-{noise}")


SCREEN_PANELS = (
    ("pos_share", "positive share"),
    ("noisy_share", "noisy share"),
    ("theta_pos", "θ_pos (θ_neg dashed)"),
)


def screen_figure(logs: dict[str, pd.DataFrame], stem: Path) -> list[Path]:
    """MDR-CHCA's confidence screen per epoch, one line per run (``logs``: label -> its ``log.csv``): the share
    of candidate pairs taken as positives, the share below θ_neg, and θ_pos (θ_neg dashed on the same panel)."""
    figure, axes = plt.subplots(1, len(SCREEN_PANELS), figsize=(4.2 * len(SCREEN_PANELS), 3.2), layout="constrained")
    for label, log in logs.items():
        for ax, (column, _) in zip(axes, SCREEN_PANELS, strict=True):
            (line,) = ax.plot(log["epoch"], log[column], label=label)
            if column == "theta_pos" and "theta_neg" in log.columns:
                ax.plot(log["epoch"], log["theta_neg"], linestyle="--", color=line.get_color())
    for ax, (_, title) in zip(axes, SCREEN_PANELS, strict=True):
        ax.set_xlabel("epoch")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[0].set_ylim(0, 1)
    axes[1].set_ylim(0, 1)
    figure.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=2, fontsize=7)
    return save(figure, stem)

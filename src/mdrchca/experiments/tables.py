"""Tables and significance tests over a grid's runs: the paper's Table 2 layout in Markdown and LaTeX.

Input is the frame of :func:`~mdrchca.experiments.grid.collect` (one row per run). Means and standard
deviations are over seeds. Two paired tests compare two models on one dataset (``scipy.stats``):

- Wilcoxon signed-rank on per-user test metric values, pairs (user, seed) pooled over the seeds both models
  ran (each run's ``test_per_user.csv``);
- a paired t-test over seeds on the runs' mean test metric (pairs matched by seed).

A difference is called *level* when it is smaller than the larger of the two models' seed standard
deviations: the seeds move each model by more than the models differ.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from mdrchca.training.run_folder import PROVENANCE_FILE, RunFolder

PAPER_METRICS = ("recall@20", "ndcg@20", "precision@20")
SHORT_NAMES = {"recall": "R", "ndcg": "N", "precision": "P", "hit": "H"}


def short(metric: str) -> str:
    """``recall@20`` -> ``R@20``."""
    name, _, k = metric.partition("@")
    return f"{SHORT_NAMES.get(name, name)}@{k}"


def summarize(frame: pd.DataFrame, by: Sequence[str], metrics: Sequence[str], split: str = "test") -> pd.DataFrame:
    """Mean, standard deviation (ddof 1; 0 for one seed) and seed count of each metric per group."""
    columns = [f"{split} {m}" for m in metrics]
    grouped = frame.groupby(list(by), sort=False)[columns]
    mean, std, count = grouped.mean(), grouped.std(ddof=1).fillna(0.0), grouped.size()
    out = pd.DataFrame(index=mean.index)
    for metric, column in zip(metrics, columns, strict=True):
        out[f"{metric} mean"] = mean[column]
        out[f"{metric} std"] = std[column]
    out["seeds"] = count
    return out.reset_index()


@dataclass(frozen=True)
class Comparison:
    """Model ``a`` against model ``b`` on one dataset and metric: means, seed spreads and both p-values."""

    dataset: str
    metric: str
    a: str
    b: str
    mean_a: float
    mean_b: float
    std_a: float
    std_b: float
    seeds: int
    users: int
    p_wilcoxon: float
    p_ttest: float

    @property
    def level(self) -> bool:
        return abs(self.mean_a - self.mean_b) < max(self.std_a, self.std_b)

    @property
    def improvement(self) -> float:
        return (self.mean_a - self.mean_b) / self.mean_b * 100 if self.mean_b else float("nan")

    def verdict(self, alpha: float = 0.05) -> str:
        if self.level:
            return "level (inside the seed spread)"
        ahead = self.a if self.mean_a > self.mean_b else self.b
        both = self.p_wilcoxon < alpha and (np.isnan(self.p_ttest) or self.p_ttest < alpha)
        return f"{ahead} ahead" + ("" if both else f" (not significant at {alpha})")


def relative_drops(summary: pd.DataFrame) -> pd.DataFrame | None:
    """Each model's test R@20 on the clean catalogue (level 0), at the largest level, and the relative drop
    between them, from a robustness ``summary`` (columns ``dataset``, ``model``, ``level``, ``recall@20 mean``).
    None when a model's runs hold no clean level or no level above it: a drop needs both ends."""
    rows = []
    for (dataset, model), part in summary.groupby(["dataset", "model"], sort=False):
        levels = part["level"].astype(float)
        if levels.min() != 0 or levels.max() == 0:
            return None
        clean = part.loc[levels.idxmin(), "recall@20 mean"]
        worst = part.loc[levels.idxmax(), "recall@20 mean"]
        rows.append(
            {
                "dataset": dataset,
                "model": model,
                "clean R@20": clean,
                f"R@20 at {levels.max():g}": worst,
                "relative drop": f"{(clean - worst) / clean * 100:.1f}%" if clean else "—",
            }
        )
    return pd.DataFrame(rows)


def compare_models(
    frame: pd.DataFrame, out: Path, dataset: str, a: str, b: str, metric: str, by: str = "model"
) -> Comparison:
    """Paired tests of the runs whose ``by`` column is ``a`` against those where it is ``b`` on ``dataset``
    (models by default; ``by="variant"`` compares ablation variants). See the module docstring."""
    rows = frame[frame["dataset"] == dataset]
    runs_a = rows[rows[by] == a].set_index("seed")
    runs_b = rows[rows[by] == b].set_index("seed")
    seeds = sorted(set(runs_a.index) & set(runs_b.index))
    column = f"test {metric}"
    diffs = []
    for seed in seeds:
        per_a = _per_user(out / runs_a.loc[seed, "run"], metric)
        per_b = _per_user(out / runs_b.loc[seed, "run"], metric)
        joined = per_a.merge(per_b, left_index=True, right_index=True, suffixes=("_a", "_b"))
        diffs.append((joined[f"{metric}_a"] - joined[f"{metric}_b"]).to_numpy())
    paired = np.concatenate(diffs) if diffs else np.empty(0)
    p_wilcoxon = float(stats.wilcoxon(paired).pvalue) if np.any(paired != 0) else 1.0
    seed_a = runs_a.loc[seeds, column].to_numpy(dtype=float)
    seed_b = runs_b.loc[seeds, column].to_numpy(dtype=float)
    p_ttest = float(stats.ttest_rel(seed_a, seed_b).pvalue) if len(seeds) > 1 and np.any(seed_a != seed_b) else np.nan
    return Comparison(
        dataset,
        metric,
        a,
        b,
        float(runs_a[column].mean()),
        float(runs_b[column].mean()),
        float(runs_a[column].std(ddof=1)) if len(runs_a) > 1 else 0.0,
        float(runs_b[column].std(ddof=1)) if len(runs_b) > 1 else 0.0,
        len(seeds),
        len(paired),
        p_wilcoxon,
        p_ttest,
    )


def _per_user(run: Path, metric: str) -> pd.DataFrame:
    return RunFolder(run).read_per_user()[[metric]]


def ranked_models(summary: pd.DataFrame, dataset: str, metric: str) -> list[str]:
    """Models on ``dataset`` from best to worst mean ``metric``."""
    rows = summary[summary["dataset"] == dataset].sort_values(f"{metric} mean", ascending=False)
    return list(rows["model"])


@dataclass
class PaperTable:
    """Table 2's content: mean +- std per (model, dataset, metric), the ranking marks, and the tests."""

    summary: pd.DataFrame
    datasets: list[str]
    models: list[str]
    metrics: tuple[str, ...]
    target: str | None
    tests: list[Comparison]

    def cell(self, model: str, dataset: str, metric: str) -> tuple[float, float] | None:
        row = self.summary[(self.summary["model"] == model) & (self.summary["dataset"] == dataset)]
        if row.empty:
            return None
        return float(row[f"{metric} mean"].iloc[0]), float(row[f"{metric} std"].iloc[0])

    def rank(self, model: str, dataset: str, metric: str) -> int:
        """1 for the best mean in the column, 2 for the runner-up, 0 otherwise."""
        order = ranked_models(self.summary, dataset, metric)
        return order.index(model) + 1 if model in order[:2] else 0

    def improvement(self, dataset: str, metric: str) -> float | None:
        """The target's gain over the best other model, in percent (the paper's "Improv." row)."""
        if self.target is None or self.target not in self.models:
            return None
        mine = self.cell(self.target, dataset, metric)
        others = [self.cell(m, dataset, metric) for m in self.models if m != self.target]
        others = [o for o in others if o is not None]
        if mine is None or not others:
            return None
        best = max(o[0] for o in others)
        return (mine[0] - best) / best * 100 if best else None


def paper_table(
    frame: pd.DataFrame,
    out: Path,
    metrics: Sequence[str] = PAPER_METRICS,
    target: str | None = "mdrchca",
    test_metric: str = "recall@20",
) -> PaperTable:
    """Summaries and tests for :func:`to_markdown` / :func:`to_latex`: per dataset, the best model against the
    runner-up, and the target against every other model, on ``test_metric``."""
    summary = summarize(frame, ["dataset", "model"], metrics)
    datasets = list(dict.fromkeys(frame["dataset"]))
    models = list(dict.fromkeys(frame["model"]))
    tests = []
    for dataset in datasets:
        order = ranked_models(summary, dataset, test_metric)
        pairs = [(order[0], order[1])] if len(order) > 1 else []
        if target in order:
            pairs += [
                (target, m) for m in order if m != target and (target, m) not in pairs and (m, target) not in pairs
            ]
        tests += [compare_models(frame, out, dataset, a, b, test_metric) for a, b in pairs]
    return PaperTable(summary, datasets, models, tuple(metrics), target, tests)


def tests_markdown(tests: Sequence[Comparison]) -> str:
    """The paired tests as a Markdown table."""
    lines = [
        "| dataset | A | B | mean A | mean B | Δ | seeds | users×seeds | p (Wilcoxon) | p (t-test, seeds) | verdict |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for t in tests:
        lines.append(
            f"| {t.dataset} | {t.a} | {t.b} | {t.mean_a:.4f} | {t.mean_b:.4f} | {t.improvement:+.2f}% | {t.seeds} | "
            f"{t.users} | {t.p_wilcoxon:.2e} | {t.p_ttest:.2e} | {t.verdict()} |"
        )
    return "\n".join(lines) + "\n"


def _format(mean: float, std: float) -> str:
    return f"{mean:.4f} ± {std:.4f}"


def to_markdown(table: PaperTable) -> str:
    """The table (best in bold, runner-up underlined, an Improv. row), then the tests."""
    header = ["model"] + [f"{d} {short(m)}" for d in table.datasets for m in table.metrics]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for model in table.models:
        cells = [model]
        for dataset in table.datasets:
            for metric in table.metrics:
                value = table.cell(model, dataset, metric)
                text = "—" if value is None else _format(*value)
                rank = table.rank(model, dataset, metric) if value is not None else 0
                cells.append(f"**{text}**" if rank == 1 else f"<u>{text}</u>" if rank == 2 else text)
        lines.append("| " + " | ".join(cells) + " |")
    if table.target in table.models and len(table.models) > 1:
        gains = [table.improvement(d, m) for d in table.datasets for m in table.metrics]
        lines.append("| Improv. | " + " | ".join("—" if g is None else f"{g:+.2f}%" for g in gains) + " |")
    if not table.tests:  # one model per dataset: nothing to pair
        return "\n".join([*lines, "", "No paired tests: each dataset has one model."]) + "\n"
    lines += ["", f"Paired tests on per-user test {short(table.tests[0].metric)}:", ""]
    return "\n".join(lines) + "\n" + tests_markdown(table.tests)


def _tex_escape(text: str) -> str:
    return text.replace("\\", r"\textbackslash{}").replace("_", r"\_").replace("&", r"\&").replace("%", r"\%")


def to_latex(table: PaperTable, caption: str = "Performance comparison (mean $\\pm$ std over seeds).") -> str:
    """A ``booktabs`` table in the layout of the paper's Table 2: datasets as column groups, best in bold,
    runner-up underlined, an Improv. row, the best-vs-runner-up p-values in the footnote."""
    n = len(table.metrics)
    spec = "l" + ("c" * n) * len(table.datasets)
    lines = [
        r"\begin{table}[t]",
        r"\centering",
        rf"\caption{{{caption}}}",
        rf"\begin{{tabular}}{{{spec}}}",
        r"\toprule",
        " & " + " & ".join(rf"\multicolumn{{{n}}}{{c}}{{{_tex_escape(d)}}}" for d in table.datasets) + r" \\",
        " ".join(rf"\cmidrule(lr){{{2 + i * n}-{1 + (i + 1) * n}}}" for i in range(len(table.datasets))),
        "Model & " + " & ".join(short(m) for _ in table.datasets for m in table.metrics) + r" \\",
        r"\midrule",
    ]
    for model in table.models:
        cells = [_tex_escape(model)]
        for dataset in table.datasets:
            for metric in table.metrics:
                value = table.cell(model, dataset, metric)
                if value is None:
                    cells.append("--")
                    continue
                text = rf"{value[0]:.4f}$\pm${value[1]:.4f}"
                rank = table.rank(model, dataset, metric)
                cells.append(rf"\textbf{{{text}}}" if rank == 1 else rf"\underline{{{text}}}" if rank == 2 else text)
        lines.append(" & ".join(cells) + r" \\")
    if table.target in table.models and len(table.models) > 1:
        gains = [table.improvement(d, m) for d in table.datasets for m in table.metrics]
        lines += [r"\midrule", "Improv. & " + " & ".join("--" if g is None else f"{g:+.2f}\\%" for g in gains) + r" \\"]
    lines += [r"\bottomrule", r"\end{tabular}"]
    notes = [
        f"{_tex_escape(t.dataset)}: {_tex_escape(t.a)} vs {_tex_escape(t.b)}, Wilcoxon $p={t.p_wilcoxon:.1e}$, "
        f"paired $t$ over {t.seeds} seeds $p={t.p_ttest:.1e}$" + (" (level)" if t.level else "")
        for t in table.tests
        if (t.a, t.b) == tuple(ranked_models(table.summary, t.dataset, t.metric)[:2])
    ]
    if notes:
        lines.append(
            r"\\[2pt]\footnotesize{Best vs.\ runner-up on per-user test " + short(table.tests[0].metric) + ": "
        )
        lines.append("; ".join(notes) + ".}")
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def provenance_summary(frame: pd.DataFrame, out: Path) -> dict[str, object]:
    """Which code and data produced the runs of ``frame``: the distinct code versions and dataset
    fingerprints recorded in their ``run.json``."""
    codes: dict[str, int] = {}
    data: dict[str, str] = {}
    libraries: dict[str, str] = {}
    machines: set[str] = set()
    for run in frame.get("run", []):
        path = out / run / PROVENANCE_FILE
        if not path.is_file():
            continue
        record = json.loads(path.read_text(encoding="utf-8"))
        code = record.get("code", {})
        label = f"{code.get('git_commit', 'unknown')[:12]}{' (dirty)' if code.get('git_dirty') else ''}"
        label = label if code.get("git_commit") else f"mdrchca {code.get('mdrchca', '?')}"
        codes[label] = codes.get(label, 0) + 1
        fingerprint = record.get("data", {}).get("fingerprint", {})
        name = Path(record.get("data", {}).get("path") or "bundled").name
        data[name] = ", ".join(f"{k} {v}" for k, v in sorted(fingerprint.items()))
        libraries.update(record.get("libraries", {}))
        machine = record.get("machine", {})
        machines.add(f"{machine.get('cpu_model') or machine.get('processor', '?')}, {machine.get('gpu') or 'no GPU'}")
    return {"code": codes, "data": data, "libraries": libraries, "machines": sorted(machines)}


def provenance_markdown(summary: dict[str, object]) -> str:
    code = summary["code"]
    data = summary["data"]
    lines = ["Provenance:", ""]
    lines += [f"- code: {label} ({count} runs)" for label, count in code.items()]  # type: ignore[union-attr]
    lines += [f"- data {name}: {fp}" for name, fp in data.items()]  # type: ignore[union-attr]
    libs = summary["libraries"]
    lines.append("- libraries: " + ", ".join(f"{k} {v}" for k, v in sorted(libs.items())))  # type: ignore[union-attr]
    lines += [f"- machine: {m}" for m in summary["machines"]]  # type: ignore[union-attr]
    return "\n".join(lines) + "\n"

"""The experiment commands' Python API: run a plan's grid, then write its tables and figures into ``out``.

Every command writes ``results.csv`` (one row per run, with its folder) and ``results.md`` (tables, tests and
provenance: which code and data made them); ``compare`` adds ``results.tex`` in the layout of the paper's
Table 2 and ``breakdown.csv`` (by user activity and test-item popularity), ``sweep``, ``ablate`` and
``robustness`` add their figures (PNG and SVG).
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from mdrchca.experiments import figures, plans, tables
from mdrchca.experiments.breakdown import by_item_popularity, by_user_activity
from mdrchca.experiments.grid import GridError, GridOptions, GridResult, RunSpec, run_grid
from mdrchca.experiments.report import to_markdown
from mdrchca.io import write_text

log = logging.getLogger(__name__)

RESULTS_CSV = "results.csv"
RESULTS_MD = "results.md"
RESULTS_TEX = "results.tex"
BREAKDOWN_CSV = "breakdown.csv"


@dataclass
class ExperimentResult:
    """What an experiment command wrote: the runs' frame, the files, failed runs and the grid's wall time."""

    out: Path
    frame: pd.DataFrame
    files: list[Path] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass(frozen=True)
class Experiment:
    """What every experiment command shares (``--data``, ``--seeds``, ``--set``, ``--out`` and the grid's
    options), built once by the CLI or by a Python caller and handed to :func:`compare`, :func:`sweep`,
    :func:`ablate` and :func:`robustness`."""

    out: Path
    """The experiment folder: its runs, ``grid.db``, ``results.*`` and figures."""
    datasets: Sequence[str | None] = (None,)
    """Dataset folders; ``None`` is the bundled catalogue."""
    seeds: Sequence[int] = field(default_factory=lambda: plans.parse_seeds(5))
    """Training seeds of every run (:func:`plans.parse_seeds`)."""
    overrides: Sequence[str] = ()
    """``KEY=VALUE`` (or ``MODEL:KEY=VALUE``) options of every run."""
    grid: GridOptions | None = None
    """Workers, threads and queue storage; ``None``: one local worker."""
    command: str | None = None
    """The command line recorded in ``results.md`` (``None`` from Python)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "out", Path(self.out))
        object.__setattr__(self, "seeds", tuple(plans.check_seeds(self.seeds)))
        object.__setattr__(self, "datasets", tuple(self.datasets))
        object.__setattr__(self, "overrides", tuple(self.overrides))


def _grid(experiment: Experiment, specs: list[RunSpec], title: str) -> GridResult:
    check_results_folder(experiment.out, title)
    result = run_grid(specs, experiment.out, experiment.grid, experiment.command)
    for key, error in result.failed.items():
        log.error("run %s failed: %s", key, error)
    return result


RESULTS_MARK = "<!-- written by mdrchca: the command that made it writes it again -->"
"""The first line of every ``results.md`` an experiment writes; a results file without it is someone's own."""


def check_results_folder(out: Path, title: str | None = None) -> None:
    """Refuse, before any run, an ``--out`` whose ``results.md`` was not written by an experiment command (a
    hand-written or hand-edited report would be replaced), or, given the ``title`` this command writes, one
    written by another experiment (``ablate`` into ``compare``'s folder would replace the comparison's tables)."""
    path = Path(out) / RESULTS_MD
    if not path.is_file():
        return
    with open(path, "rb") as handle:
        first = handle.readline().decode("utf-8", "replace").strip()
        heading = handle.readline().decode("utf-8", "replace").strip()
    if first != RESULTS_MARK:
        raise GridError(f"{path}: not written by mdrchca (its first line is not {RESULTS_MARK}); choose another --out")
    written = heading.removeprefix("# ")
    if title is not None and written != title:
        raise GridError(
            f"{path}: holds the results of '{written}', which this command ('{title}') would replace; "
            "choose another --out"
        )


def portable_command(command: str, cwd: Path | None = None) -> str:
    """``command`` with every absolute path inside ``cwd`` (default: the working folder) written relative to
    it, also as an option's ``=value``: a results file copied elsewhere then tells how to rerun it from its
    project folder, not where one machine kept its files."""
    base = (cwd or Path.cwd()).absolute()

    def relative(token: str) -> str:
        key, sep, value = token.rpartition("=")
        paths = value.split(",")
        if not any(part.startswith("/") for part in paths):
            return token
        shown = []
        for part in paths:
            path = Path(part)
            shown.append(str(path.relative_to(base)) if path.is_absolute() and path.is_relative_to(base) else part)
        return f"{key}{sep}{','.join(shown)}"

    try:
        words = shlex.split(command)
    except ValueError:  # unbalanced quotes: leave it as typed
        return command
    return shlex.join(relative(word) for word in words)


def _write_common(out: Path, frame: pd.DataFrame, title: str, body: str, command: str | None) -> list[Path]:
    write_text(out / RESULTS_CSV, frame.to_csv(index=False))
    provenance = tables.provenance_markdown(tables.provenance_summary(frame, out))
    made_by = f"Made by: `{portable_command(command)}`\n\n" if command else ""
    write_text(out / RESULTS_MD, f"{RESULTS_MARK}\n# {title}\n\n{made_by}{body}\n{provenance}")
    return [out / RESULTS_CSV, out / RESULTS_MD]


def _empty(result: GridResult, out: Path) -> ExperimentResult | None:
    if result.frame.empty:
        return ExperimentResult(out, result.frame, [], result.failed, result.seconds)
    return None


def compare(
    experiment: Experiment, models: Sequence[str], tuned: str | Path | None = None, target: str = "mdrchca"
) -> ExperimentResult:
    """Table 2: every model on every dataset with every seed, tested against each other (see :mod:`tables`);
    ``tuned``: a folder of ``mdrchca tune`` studies whose best settings each model takes."""
    out, overrides = experiment.out, experiment.overrides
    specs = plans.compare_plan(experiment.datasets, models, experiment.seeds, overrides, tuned)
    title = "Comparison"
    result = _grid(experiment, specs, title)
    if (empty := _empty(result, out)) is not None:
        return empty
    frame = result.frame
    table = tables.paper_table(frame, out, target=target)
    tex = out / RESULTS_TEX
    write_text(tex, tables.to_latex(table))
    breakdown = _breakdowns(frame, out)
    write_text(out / BREAKDOWN_CSV, breakdown.to_csv(index=False))
    fixed = f", with {', '.join(f'`{o}`' for o in overrides)}" if overrides else ""
    tuning = (
        f"Settings: tuned by `mdrchca tune` ({tuned}){fixed}.\n\n"
        if tuned
        else f"Settings: each model's defaults{fixed}.\n\n"
    )
    valid = tables.summarize(frame, ["dataset", "model"], ["recall@20", "ndcg@20"], split="valid")
    selection = "Validation (what selection saw), mean and std over seeds:\n\n" + to_markdown(valid) + "\n\n"
    body = tuning + tables.to_markdown(table) + "\n" + selection + _breakdown_markdown(breakdown)
    files = _write_common(out, frame, title, body, experiment.command) + [tex, out / BREAKDOWN_CSV]
    return ExperimentResult(out, frame, files, result.failed, result.seconds)


def _breakdowns(frame: pd.DataFrame, out: Path) -> pd.DataFrame:
    """Test R@20 by user activity and hit@20 by test-item popularity, averaged over seeds, per model."""
    from mdrchca.training.api import load_run

    parts = []
    for row in frame.itertuples(index=False):
        run = load_run(out / row.run)
        users = by_user_activity(run.model, run.dataset, "test", 20).rename(columns={"train interactions": "bucket"})
        users.insert(0, "by", "user train interactions")
        items = by_item_popularity(run.model, run.dataset, "test", 20).rename(
            columns={"item train interactions": "bucket"}
        )
        items.insert(0, "by", "item train interactions")
        for part in (users, items):
            part.insert(0, "seed", row.seed)
            part.insert(0, "model", row.model)
            part.insert(0, "dataset", row.dataset)
            parts.append(part)
    return pd.concat(parts, ignore_index=True)


def _breakdown_markdown(breakdown: pd.DataFrame) -> str:
    lines = ["Breakdown (test, mean over seeds):", ""]
    for (dataset, by), part in breakdown.groupby(["dataset", "by"], sort=False):
        value = "recall@20" if by.startswith("user") else "hit@20"
        pivot = part.groupby(["bucket", "model"], sort=False)[value].mean().unstack("model")
        lines += [f"{dataset}, {value} by {by}:", "", to_markdown(pivot.reset_index()), ""]
    return "\n".join(lines)


def sweep(experiment: Experiment, model: str, params: Sequence[tuple[str, Sequence[str]]]) -> ExperimentResult:
    """Figures 4-5: one parameter at a time (``params``: name and values); a table and a figure per parameter."""
    out = experiment.out
    specs = plans.sweep_plan(model, experiment.datasets, params, experiment.seeds, experiment.overrides)
    title = f"Parameter sweep of {model}"
    result = _grid(experiment, specs, title)
    if (empty := _empty(result, out)) is not None:
        return empty
    frame = result.frame
    summary = tables.summarize(frame, ["param", "value", "dataset"], figures.FIGURE_METRICS)
    body = to_markdown(summary) + "\n"
    files = _write_common(out, frame, title, body, experiment.command)
    files += figures.sweep_figures(frame, out)
    return ExperimentResult(out, frame, files, result.failed, result.seconds)


def ablate(experiment: Experiment, model: str = "mdrchca") -> ExperimentResult:
    """Figure 3: the full model and its registered variants, as a table and a grouped bar chart."""
    out = experiment.out
    title = f"Ablation of {model}"
    result = _grid(
        experiment, plans.ablation_plan(model, experiment.datasets, experiment.seeds, experiment.overrides), title
    )
    if (empty := _empty(result, out)) is not None:
        return empty
    frame = result.frame
    summary = tables.summarize(frame, ["dataset", "variant"], tables.PAPER_METRICS)
    variants = list(dict.fromkeys(frame["variant"]))
    tests = [
        tables.compare_models(frame, out, dataset, variants[0], other, "recall@20", by="variant")
        for dataset in dict.fromkeys(frame["dataset"])
        for other in variants[1:]
    ]
    body = to_markdown(summary) + "\n\nThe full model against each variant, paired tests on per-user test R@20:\n\n"
    body += tables.tests_markdown(tests)
    files = _write_common(out, frame, title, body, experiment.command)
    files += figures.ablation_figure(frame, out)
    return ExperimentResult(out, frame, files, result.failed, result.seconds)


def robustness(
    experiment: Experiment, models: Sequence[str], noise: str, levels: Sequence[float], modality: str = "image"
) -> ExperimentResult:
    """Test accuracy against the share (``levels``) of items whose ``modality`` features get ``noise``, per
    model; the table gives each model's relative drop from the clean catalogue to the largest level when the
    levels hold 0."""
    out = experiment.out
    specs = plans.robustness_plan(
        experiment.datasets, models, noise, levels, experiment.seeds, modality, experiment.overrides
    )
    title = f"Robustness to {noise} noise"
    result = _grid(experiment, specs, title)
    if (empty := _empty(result, out)) is not None:
        return empty
    frame = result.frame
    summary = tables.summarize(frame, ["dataset", "model", "level"], ["recall@20", "ndcg@20"])
    drops = tables.relative_drops(summary)
    body = f"Noise: {noise} on {modality} features.\n\n" + to_markdown(summary) + "\n\n"
    if drops is None:
        body += "No relative drop: these runs hold no clean level (0) beside a noisy one (`--levels 0,...`).\n"
    else:
        body += to_markdown(drops) + "\n"
    names = list(dict.fromkeys(frame["model"]))
    for level in sorted(frame["level"].astype(float).unique()):
        at = frame[frame["level"].astype(float) == level]
        tests = [
            tables.compare_models(at, out, dataset, names[0], other, "recall@20")
            for dataset in dict.fromkeys(at["dataset"])
            for other in names[1:]
        ]
        if tests:
            body += f"\nAt level {level:g}, {names[0]} against each other model, paired tests on per-user "
            body += "test R@20:\n\n"
            body += tables.tests_markdown(tests)
    files = _write_common(out, frame, title, body, experiment.command)
    files += figures.robustness_figure(frame, out)
    return ExperimentResult(out, frame, files, result.failed, result.seconds)

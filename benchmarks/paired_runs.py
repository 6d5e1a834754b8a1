"""Paired tests between two sets of finished run folders, matched by seed, as `compare` computes them.

Usage: python benchmarks/paired_runs.py --a LABEL RUN [RUN ...] --b LABEL RUN [RUN ...] [--metric recall@20]

For runs made outside one grid (for instance a model's runs of a robustness grid's clean level against
another model's plain `mdrchca train` runs with the same data, split and seeds): reads each run's
`metrics.json`, `config.yaml` (for its seed and dataset) and `test_per_user.csv`, and prints the means over
seeds and the paired tests of :func:`mdrchca.experiments.tables.compare_models` (Wilcoxon over users x seeds,
t-test over seeds) as a Markdown table, with validation means for selection.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import yaml

from mdrchca.errors import MdrchcaError
from mdrchca.experiments.tables import compare_models, tests_markdown
from mdrchca.training.run_folder import RunFolder


def runs_frame(label: str, runs: list[Path], metric: str) -> pd.DataFrame:
    rows = []
    for run in runs:
        folder = RunFolder(run)
        metrics = folder.read_metrics()
        config = yaml.safe_load((run / "config.yaml").read_text())
        rows.append(
            {
                "dataset": Path(config["data"]["data_path"]).name,
                "model": label,
                "seed": int(config["train"]["seed"]),
                "run": str(run.resolve()),
                f"test {metric}": metrics["test"][metric],
                f"valid {metric}": metrics["valid"][metric],
            }
        )
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--a", nargs="+", required=True, metavar="LABEL RUN", help="a label, then its runs")
    parser.add_argument("--b", nargs="+", required=True, metavar="LABEL RUN", help="a label, then its runs")
    parser.add_argument("--metric", default="recall@20")
    args = parser.parse_args()
    if len(args.a) < 2 or len(args.b) < 2:
        raise MdrchcaError("--a and --b: give a label, then at least one run folder")
    (label_a, *runs_a), (label_b, *runs_b) = args.a, args.b
    runs_a, runs_b = [Path(r) for r in runs_a], [Path(r) for r in runs_b]
    frame = pd.concat([runs_frame(label_a, runs_a, args.metric), runs_frame(label_b, runs_b, args.metric)])
    datasets = frame["dataset"].unique()
    if len(datasets) != 1:
        raise MdrchcaError(f"the runs are on several datasets ({', '.join(datasets)}); pair runs of one dataset")
    print(frame.drop(columns="run").sort_values(["model", "seed"]).to_markdown(index=False, floatfmt=".4f"))
    print()
    valid = frame.groupby("model")[f"valid {args.metric}"].mean()
    print(f"validation {args.metric} means: " + ", ".join(f"{k} {v:.4f}" for k, v in valid.items()))
    print()
    print(tests_markdown([compare_models(frame, Path("/"), datasets[0], label_a, label_b, args.metric)]))


if __name__ == "__main__":
    try:
        main()
    except MdrchcaError as error:  # a wrong folder or option: one line, no traceback
        raise SystemExit(f"error: {error}") from None

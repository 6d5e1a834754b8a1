"""One Markdown table from the ``mdrchca probe`` outputs of several runs: what each mechanism changes.

Each argument is ``LABEL=FOLDER``, a folder holding a run's ``metrics.json`` and the ``probe.csv`` that
``mdrchca probe --run FOLDER --out FOLDER/probe.csv`` wrote. A row per run: its validation R@20, then for each
probe the mean change of validation R@20 over its draws and, in brackets, the mean top-20 overlap with the
trained model's recommendations (1 = the same 20 items for every user).

    python benchmarks/probe_table.py "new defaults, seed 999=runs/d4-999" "old defaults=runs/ref-mdrchca-999"
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import pandas as pd

SHORT = {
    "alignment W_Q, W_K re-randomised": "W_Q, W_K re-randomised",
    "dense alignment (variant A's path)": "variant A's dense path",
    "confidence weights out of the fusion": "confidences out of the pooling",
    "every confidence out of the fusion": "every confidence out of f",
    "cross-modal value term removed": "cross-modal term removed",
    "self-attention denoising off": "denoising off",
    "all content off (f = 0)": "content off",
}


def probe_row(folder: Path) -> dict[str, str]:
    """The formatted cells of one run: validation R@20 and each probe's mean change (overlap)."""
    metrics = json.loads((folder / "metrics.json").read_text())
    probes = pd.read_csv(folder / "probe.csv")
    row = {"valid R@20": f"{metrics['valid']['recall@20']:.4f}"}
    cells: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for record in probes.itertuples(index=False):
        if record.probe != "trained":
            cells[SHORT.get(record.probe, record.probe)].append((record.change, record.topk_overlap))
    for name, values in cells.items():
        change = sum(v[0] for v in values) / len(values)
        overlap = sum(v[1] for v in values) / len(values)
        row[name] = f"{100 * change:+.2f}% ({overlap:.3f})"
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="LABEL=FOLDER")
    args = parser.parse_args()
    rows = {}
    for spec in args.runs:
        label, _, folder = spec.rpartition("=")
        rows[label or folder] = probe_row(Path(folder))
    table = pd.DataFrame.from_dict(rows, orient="index").fillna("")
    print(table.to_markdown(disable_numparse=True))


if __name__ == "__main__":
    main()

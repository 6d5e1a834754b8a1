"""The softmax of the alignment (``alignment.row_softmax``): PyTorch's kernel against the written-out form, by
row length and in MDR-CHCA's content branch.

Usage: python benchmarks/bench_softmax.py [--data data/ml100k-64] [--rounds 5]

One thread. Part 1: a tensor of about four million logits (a fifth masked to the lowest float) in rows of C = 4 ... 64;
the ratio is the kernel's time over the written-out form's (above 1: writing it out pays). Part 2 (with
``--data``): the content branch of MDR-CHCA with its defaults on the dataset, forward (no gradients) and
forward + backward of 32 and 256 items, with ``alignment.SHORT_ROW`` at 0 (every softmax in the kernel: the
code before the change) and at its default (short rows written out), alternated ``--rounds`` times in the
same process so that the machine's drift falls on both; medians of the per-round times.
"""

from __future__ import annotations

import argparse
import json
import statistics

import torch

import mdrchca.models  # noqa: F401  (registers the models)
from bench_content_pass import branch_ms_per_item, median_seconds  # a script beside this one
from mdrchca.config import Config
from mdrchca.data.dataset import load_dataset
from mdrchca.models.mdrchca import alignment
from mdrchca.training.trainer import build_model


def row_lengths() -> dict[int, float]:
    ratios = {}
    for length in (4, 8, 10, 12, 15, 16, 20, 32, 64):
        x = torch.randn(4_000_000 // length, length)
        x[torch.rand_like(x) < 0.2] = torch.finfo(x.dtype).min
        kernel = median_seconds(lambda x=x: alignment.row_softmax(x, written_out=False), 11)
        written = median_seconds(lambda x=x: alignment.row_softmax(x, written_out=True), 11)
        ratios[length] = round(kernel / written, 2)
    return ratios


def content_branch(data: str, rounds: int) -> dict[str, float]:
    config = Config.load("mdrchca", overrides=["device=cpu", "num_threads=1"])
    config.data.data_path = data
    dataset = load_dataset(data, config.data)
    torch.manual_seed(0)
    model = build_model(config, dataset)
    branch = model.content_branch
    context = tuple(c.detach() if c is not None else None for c in branch.graph_context())
    default = alignment.SHORT_ROW
    times: dict[str, list[float]] = {}
    for _ in range(rounds):
        for label, short_row in (("kernel", 0), ("written", default)):
            alignment.SHORT_ROW = short_row
            for n in (32, 256):
                for name, ms in branch_ms_per_item(model, context, torch.arange(n), 5).items():
                    times.setdefault(f"{name}_{n}_{label}_ms_per_item", []).append(ms)
    alignment.SHORT_ROW = default
    row = {key: round(statistics.median(values), 4) for key, values in times.items()}
    for key in [k for k in row if k.endswith("_kernel_ms_per_item")]:
        stem = key.removesuffix("_kernel_ms_per_item")
        row[f"{stem}_speedup"] = round(row[key] / row[f"{stem}_written_ms_per_item"], 2)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=None)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(json.dumps({"kernel_over_written_by_row_length": row_lengths()}))
    if args.data:
        print(json.dumps(content_branch(args.data, args.rounds)))


if __name__ == "__main__":
    main()

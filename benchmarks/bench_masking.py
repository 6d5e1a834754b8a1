"""Masking attention scores on the CPU: ``masked_fill`` against adding a bias (``components.masking.additive_mask``).

Usage: python benchmarks/bench_masking.py [--repeats 40] [--out masking.json]

One thread. The shapes of one chunk of MDR-CHCA's content pass on ML-100K (64 items, 4 heads, 64 tokens x 64
regions): the scores ``[64, 4, 64, 64]`` masked by a ``[64, 1, 64, 64]`` mask shared by the heads, and a
head-averaged ``[64, 64, 64]`` tensor masked or multiplied by a full mask. Each operation runs on a fresh copy of
the scores (the copy is timed apart and subtracted); medians over ``--repeats``. Prints one JSON object, in ms.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from mdrchca.models.components.masking import additive_mask


def median_ms(work, setup, repeats: int) -> float:
    """Median ms of ``work(setup())`` with the setup's time left out."""
    times = []
    for _ in range(repeats + 1):
        arg = setup()
        start = time.perf_counter()
        work(arg)
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:]) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=40)
    parser.add_argument("--out", default=None, help="also write the JSON here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    generator = torch.Generator().manual_seed(0)
    scores = torch.randn(64, 4, 64, 64, generator=generator)
    valid = torch.rand(64, 1, 64, 64, generator=generator) > 0.8  # a token's 10-13 candidates of 64 regions
    head_mean = torch.rand(64, 64, 64, generator=generator)
    full_valid = valid.squeeze(1)
    lowest = torch.finfo(torch.float32).min
    bias = additive_mask(valid)
    keep = full_valid.float()
    r = args.repeats
    row = {
        "scores_masked_fill_ms": median_ms(lambda x: x.masked_fill_(~valid, lowest), scores.clone, r),
        "scores_bias_added_ms": median_ms(lambda x: x.add_(bias), scores.clone, r),
        "bias_built_ms": median_ms(lambda v: additive_mask(v), lambda: valid, r),
        "head_mean_masked_fill_inf_ms": median_ms(
            lambda x: x.masked_fill_(~full_valid, -torch.inf), head_mean.clone, r
        ),
        "head_mean_inf_bias_built_and_added_ms": median_ms(
            lambda x: x.add_(additive_mask(full_valid, infinite=True)), head_mean.clone, r
        ),
        "head_mean_times_bool_ms": median_ms(lambda x: x.mul_(full_valid), head_mean.clone, r),
        "head_mean_times_float_ms": median_ms(lambda x: x.mul_(keep), head_mean.clone, r),
        "mask_to_float_ms": median_ms(lambda v: v.float(), lambda: full_valid, r),
    }
    row = {key: round(value, 3) for key, value in row.items()}
    row["same_softmax"] = bool(
        torch.equal(torch.softmax(scores.masked_fill(~valid, lowest), -1), torch.softmax(scores + bias, -1))
    )
    text = json.dumps(row)
    print(text)
    if args.out:
        with open(args.out, "w") as handle:
            handle.write(text + "\n")


if __name__ == "__main__":
    main()

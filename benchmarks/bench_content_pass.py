"""MDR-CHCA's content pass against its arithmetic cost: ms per item, FLOPs per item, and the matmul limit.

Usage: python benchmarks/bench_content_pass.py --data data/ml100k-64 [--items 32] [--repeats 20] [--profile]
       python benchmarks/bench_content_pass.py --data data/ml100k-64 --compare text_side=grouped,auto [--rounds 5]
       python benchmarks/bench_content_pass.py --data data/ml100k-64 --chunks 32,64,128,256,512 [--rounds 5]
       python benchmarks/bench_content_pass.py --data data/ml100k-64 --bf16 [--rounds 4]
       python benchmarks/bench_content_pass.py --data data/ml100k-64 --scoring-pass [--rounds 7]

One thread. Builds MDR-CHCA with its defaults on the dataset, takes ``--items`` random items (a step's
budget on ML-100K's 64 + 64 slots is 16 items, 32 before session 18), and times the content branch on them:
forward without gradients (the cache refresh and validation), and forward + backward of ``fused.sum()`` (a
training step's content part). ``torch.utils.flop_counter`` counts the matrix FLOPs of each pass (matmuls,
batched matmuls, attention; elementwise work is not counted), and the *limit* is the time one dense square
matmul of the same FLOPs takes on the same thread. The distance is measured time / limit. ``--profile`` prints
the ten operators that take the most self time in the forward + backward pass. ``--compile`` times the branch
compiled by ``torch.compile`` (inductor, static shapes) as well, with the seconds its first call took.

``--compare KEY=A,B`` times instead one option of the content branch at two values, alternated ``--rounds``
times in this one process on the same model and items (each round draws new items), so that the machine's
drift falls on both: ms per item forward and forward + backward of 32 and 256 items, the medians over rounds,
and the speed-up of B over A round by round.

``--chunks N,M,...`` times the whole pass without gradients over every item (what validation and the cache
refresh run) with each of these ``content_chunk`` sizes, alternated ``--rounds`` times in this one process; the
seconds per pass, their medians, and the largest difference of any chunk size's content from the first's.

``--scoring-pass`` times the whole pass without gradients (every item, ``model.all_fused_content``, what
validation and the cache refresh run) by each route of ``scoring_pass``: ``full`` (the training forward with all
its outputs) and ``short`` (``ContentBranch.fused_content``), alternated ``--rounds`` times in this one process:
seconds per pass and their medians, the speed-up round by round, each route's matrix FLOPs and its distance to
the matmul limit of those FLOPs (the limit timed in every round beside the passes, and the distance also taken
round by round), and the largest difference between the two routes' content.

``--bf16`` times the same whole pass (chunks of 64) and ten forward + backward passes of ``--items`` items in
float32 and under ``torch.autocast("cpu", dtype=torch.bfloat16)`` (matrix products in bfloat16), alternated
``--rounds`` times, with the cosine of each item's bfloat16 content to its float32 content.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

import mdrchca.models  # noqa: F401  (registers the models)
from mdrchca.config import Config
from mdrchca.data.dataset import load_dataset
from mdrchca.training.trainer import build_model


def median_seconds(work, repeats: int) -> float:
    work()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def matmul_limit(flops: float, repeats: int) -> float:
    """Seconds of one float32 square matmul with ``flops`` FLOPs (2 n^3) on this thread."""
    n = max(8, round((flops / 2) ** (1 / 3)))
    a, b = torch.randn(n, n), torch.randn(n, n)
    return median_seconds(lambda: a @ b, repeats) * flops / (2 * n**3)


def count_flops(work) -> int:
    with FlopCounterMode(display=False) as counter:
        work()
    return counter.get_total_flops()


def branch_passes(model, context, items: torch.Tensor, branch=None) -> dict:
    """The two passes of MDR-CHCA's content branch (``branch``: the module's forward unless given, e.g.
    compiled) on ``items``: ``forward`` without gradients (the cache refresh, validation) and
    ``forward_backward`` of ``fused.sum()`` (a training step's content part)."""
    branch = branch or model.content_branch.forward

    def forward() -> None:
        with torch.no_grad():
            branch(items, context, model.thresholds)

    def forward_backward() -> None:
        model.zero_grad(set_to_none=True)
        branch(items, context, model.thresholds).fused.sum().backward()

    return {"forward": forward, "forward_backward": forward_backward}


def branch_ms_per_item(model, context, items: torch.Tensor, repeats: int) -> dict[str, float]:
    """ms per item of each of :func:`branch_passes`."""
    passes = branch_passes(model, context, items)
    return {name: 1e3 * median_seconds(work, repeats) / len(items) for name, work in passes.items()}


def compare(model, key: str, values: list[str], rounds: int, repeats: int, seed: int = 1) -> dict:
    """``--compare``: the content branch with ``key`` at each of ``values``, alternated round by round."""
    branch = model.content_branch
    base = branch.config
    configs = [
        dataclasses.replace(base, **{key: getattr(Config.load("mdrchca", overrides=[f"{key}={v}"]).model_params, key)})
        for v in values
    ]
    context = tuple(c.detach() if c is not None else None for c in branch.graph_context())
    generator = torch.Generator().manual_seed(seed)
    times: dict[str, list[float]] = {}
    for _ in range(rounds):
        for n in (32, 256):
            items = torch.randperm(model.n_items, generator=generator)[:n]
            for value, config in zip(values, configs, strict=True):
                branch.config = config
                for name, ms in branch_ms_per_item(model, context, items, repeats).items():
                    times.setdefault(f"{name}_{n}_{key}={value}_ms_per_item", []).append(round(ms, 4))
    branch.config = base
    row: dict = {"compare": key, "values": values, "rounds": rounds}
    for name in ("forward", "forward_backward"):
        for n in (32, 256):
            a, b = (times[f"{name}_{n}_{key}={v}_ms_per_item"] for v in values)
            row[f"{name}_{n}_{key}={values[0]}_ms_per_item"] = round(statistics.median(a), 4)
            row[f"{name}_{n}_{key}={values[1]}_ms_per_item"] = round(statistics.median(b), 4)
            row[f"{name}_{n}_speedup_by_round"] = [round(x / y, 2) for x, y in zip(a, b, strict=True)]
            row[f"{name}_{n}_speedup_median"] = round(statistics.median(x / y for x, y in zip(a, b, strict=True)), 2)
    return row


def chunk_sizes(model, sizes: list[int], rounds: int) -> dict:
    """``--chunks``: every item's content without gradients, in chunks of each of ``sizes``, alternated."""
    model.eval()
    seconds: dict[int, list[float]] = {size: [] for size in sizes}
    first, largest_difference = None, 0.0
    for _ in range(rounds):
        for size in sizes:
            model.config.content_chunk = size
            start = time.perf_counter()
            fused = model.all_fused_content()
            seconds[size].append(time.perf_counter() - start)
            if first is None:
                first = fused
            largest_difference = max(largest_difference, float((fused - first).abs().max()))
    row: dict = {"items": model.n_items, "positions_per_item": model.content_branch.positions_per_item}
    for size in sizes:
        row[f"chunk_{size}_s"] = [round(x, 3) for x in seconds[size]]
        row[f"chunk_{size}_median_s"] = round(statistics.median(seconds[size]), 3)
    row["largest_difference"] = largest_difference
    return row


def scoring_routes(model, rounds: int) -> dict:
    """``--scoring-pass``: the pass over every item without gradients by ``scoring_pass=full`` and ``short``,
    alternated; each round also times the matmul limit of each route's FLOPs, so that a route's distance to it
    is a ratio of two readings minutes apart at most (``distance_by_round``, and its median)."""
    model.eval()
    routes = ("full", "short")
    seconds: dict[str, list[float]] = {route: [] for route in routes}
    limits: dict[str, list[float]] = {route: [] for route in routes}
    content, flops = {}, {}
    for route in routes:  # warm-up and FLOP count, untimed
        model.config.scoring_pass = route
        flops[route] = count_flops(model.all_fused_content)
    for _ in range(rounds):
        for route in routes:
            model.config.scoring_pass = route
            start = time.perf_counter()
            content[route] = model.all_fused_content()
            seconds[route].append(time.perf_counter() - start)
            limits[route].append(matmul_limit(flops[route], 3))
    row: dict = {"items": model.n_items, "positions_per_item": model.content_branch.positions_per_item}
    for route in routes:
        median = statistics.median(seconds[route])
        limit = statistics.median(limits[route])
        by_round = [t / lim for t, lim in zip(seconds[route], limits[route], strict=True)]
        row[f"{route}_s"] = [round(x, 3) for x in seconds[route]]
        row[f"{route}_median_s"] = round(median, 3)
        row[f"{route}_gflop"] = round(flops[route] / 1e9, 2)
        row[f"{route}_limit_s"] = round(limit, 3)
        row[f"{route}_distance"] = round(median / limit, 2)
        row[f"{route}_distance_by_round"] = [round(x, 2) for x in by_round]
        row[f"{route}_distance_by_round_median"] = round(statistics.median(by_round), 2)
    row["speedup_by_round"] = [round(a / b, 2) for a, b in zip(seconds["full"], seconds["short"], strict=True)]
    row["speedup_median"] = round(statistics.median(row["speedup_by_round"]), 2)
    row["largest_difference"] = float((content["full"] - content["short"]).abs().max())
    return row


def bfloat16_autocast(model, n_items: int, rounds: int) -> dict:
    """``--bf16``: the pass without gradients over every item and ten forward + backward passes of ``n_items``
    items, in float32 and under CPU autocast to bfloat16, alternated."""
    branch = model.content_branch
    context = tuple(c.detach() if c is not None else None for c in branch.graph_context())
    every, step = torch.arange(model.n_items), torch.randperm(model.n_items)[:n_items]
    seconds: dict[str, list[float]] = {}
    content = {}
    for round_ in range(rounds + 1):  # round 0 warms both up, untimed
        for bf16 in (False, True):
            precision = "bf16" if bf16 else "fp32"
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                model.eval()
                start = time.perf_counter()
                with torch.no_grad():
                    content[precision] = torch.cat(
                        [branch(c, context, model.thresholds).fused.float() for c in every.split(64)]
                    )
                if round_:
                    seconds.setdefault(f"forward_all_{precision}_s", []).append(time.perf_counter() - start)
                model.train()
                start = time.perf_counter()
                for _ in range(10):
                    model.zero_grad(set_to_none=True)
                    branch(step, context, model.thresholds).fused.float().sum().backward()
                if round_:
                    seconds.setdefault(f"forward_backward_x10_{precision}_s", []).append(time.perf_counter() - start)
    cosine = torch.nn.functional.cosine_similarity(content["bf16"], content["fp32"], dim=1)
    row: dict = {"items": model.n_items, "step_items": n_items, "rounds": rounds}
    for name in ("forward_all", "forward_backward_x10"):
        fp32, bf16 = seconds[f"{name}_fp32_s"], seconds[f"{name}_bf16_s"]
        row[f"{name}_fp32_median_s"] = round(statistics.median(fp32), 3)
        row[f"{name}_bf16_median_s"] = round(statistics.median(bf16), 3)
        row[f"{name}_speedup_by_round"] = [round(a / b, 2) for a, b in zip(fp32, bf16, strict=True)]
    row["content_cosine_mean"] = round(float(cosine.mean()), 5)
    row["content_cosine_min"] = round(float(cosine.min()), 5)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--items", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--set", action="append", default=[], help="an MDR-CHCA option, e.g. k_r=10")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile's branch")
    parser.add_argument("--compare", default=None, help="KEY=A,B: an option of the branch at A and at B, alternated")
    parser.add_argument("--chunks", default=None, help="content_chunk sizes to time a whole pass with, e.g. 64,512")
    parser.add_argument("--bf16", action="store_true", help="float32 against CPU autocast to bfloat16, alternated")
    parser.add_argument("--scoring-pass", action="store_true", help="scoring_pass=full against short, alternated")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of --compare, --chunks, --bf16, --scoring-pass")
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = Config.load("mdrchca", overrides=["device=cpu", "num_threads=1", *args.set])
    config.data.data_path = args.data
    dataset = load_dataset(args.data, config.data)
    torch.manual_seed(0)
    model = build_model(config, dataset)
    model.train()
    if args.compare:
        key, _, values = args.compare.partition("=")
        if len(values.split(",")) != 2:
            parser.error(f"--compare {args.compare!r}: give one option and two values, e.g. text_side=grouped,auto")
        print(json.dumps(compare(model, key, values.split(","), args.rounds, max(3, args.repeats // 4))))
        return
    if args.chunks:
        print(json.dumps(chunk_sizes(model, [int(x) for x in args.chunks.split(",")], args.rounds)))
        return
    if args.bf16:
        print(json.dumps(bfloat16_autocast(model, args.items, args.rounds)))
        return
    if args.scoring_pass:
        print(json.dumps(scoring_routes(model, args.rounds)))
        return
    items = torch.randperm(dataset.n_items)[: args.items]
    context = model.content_branch.graph_context()
    context = tuple(c.detach() if c is not None else None for c in context)

    passes = branch_passes(model, context, items)
    row = {"items": args.items, "positions_per_item": model.content_branch.positions_per_item}
    for name, work in passes.items():
        seconds = median_seconds(work, args.repeats)
        flops = count_flops(work)
        limit = matmul_limit(flops, args.repeats)
        row[f"{name}_ms_per_item"] = round(1e3 * seconds / args.items, 4)
        row[f"{name}_mflop_per_item"] = round(flops / args.items / 1e6, 3)
        row[f"{name}_limit_ms_per_item"] = round(1e3 * limit / args.items, 4)
        row[f"{name}_distance"] = round(seconds / limit, 1)
    if args.compile:
        compiled_passes = branch_passes(
            model, context, items, torch.compile(model.content_branch.forward, dynamic=False)
        )
        start = time.perf_counter()
        compiled_passes["forward_backward"]()
        row["compile_first_call_s"] = round(time.perf_counter() - start, 1)
        for name, work in compiled_passes.items():
            compiled = median_seconds(work, args.repeats)
            row[f"{name}_compiled_ms_per_item"] = round(1e3 * compiled / args.items, 4)
            row[f"{name}_compiled_speedup"] = round(row[f"{name}_ms_per_item"] / row[f"{name}_compiled_ms_per_item"], 2)
    print(json.dumps(row))
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(5):
                passes["forward_backward"]()
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=10))


if __name__ == "__main__":
    main()

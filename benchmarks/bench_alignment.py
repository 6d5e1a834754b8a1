"""Hierarchical alignment vs variant A (dense cross-attention): time and peak memory, same batch, same run.

Usage: python benchmarks/bench_alignment.py [--device cpu|cuda] [--items 32] [--repeats 5] [--threads 1]
       [--image-side masked|gathered] [--text-side auto|grouped|masked]
       python benchmarks/bench_alignment.py --flops [--items 16]

For every n_t in {32, 64, 128} tokens and n_p in {16, 64, 128, 256, 1024} regions, both paths run forward and
backward on the same random batch (d = 64, 4 heads, k_r = 10, k_s = 5, k_p = 3, phrases of 8 tokens).
Time is the median of ``repeats`` runs after a warm-up. Peak memory: on CUDA, the allocator's peak; on
CPU, the rise of a fresh process's resident high-water mark during one forward and backward (Linux), and the
peak of the bytes held by live tensors during one forward and backward after a warm-up (``live``: the
profiler's allocation and free events summed in order; what the computation holds, without the first call's
one-time costs and the allocator's reuse, which the resident mark carries). Ratios are hierarchical / dense
(below 1: hierarchical is cheaper).

``--flops`` counts instead the matrix FLOPs of one forward and backward of each path with
``torch.utils.flop_counter`` (independent of the machine's load) at n_p in {256, 1024}, and prints dense /
hierarchical: the arithmetic bound of the time ratio for these shapes.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

import torch

from mdrchca.models.mdrchca.alignment import AlignmentPlan, CrossModalAttention, Positions, align

D, HEADS, K_R, K_S, K_P, PHRASE = 64, 4, 10, 5, 3, 8


def make_inputs(items: int, n_t: int, n_p: int, device: str, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randn(items, n_t, D, generator=g).to(device).requires_grad_()
    regions = torch.randn(items, n_p, D, generator=g).to(device).requires_grad_()
    token_mask = torch.ones(items, n_t, dtype=torch.bool, device=device)
    region_mask = torch.ones(items, n_p, dtype=torch.bool, device=device)
    phrase_ids = (torch.arange(n_t, device=device) // PHRASE).expand(items, n_t).contiguous()
    torch.manual_seed(seed)
    modules = (CrossModalAttention(D, HEADS, K_S).to(device), CrossModalAttention(D, HEADS, K_S).to(device))
    return modules, tokens, token_mask, phrase_ids, regions, region_mask


GATHERED = False  # --image-side gathered: the regions' side gathered too (no token x region tensor)
TEXT_SIDE = "auto"  # --text-side: the tokens' side grouped, masked, or as the model's default picks by n_p


def step(inputs, hierarchical: bool) -> None:
    (text_attn, region_attn), tokens, token_mask, phrase_ids, regions, region_mask = inputs
    positions = Positions(tokens, token_mask, phrase_ids, regions, region_mask)
    out = align(text_attn, region_attn, positions, AlignmentPlan(K_R, K_P, hierarchical, GATHERED, TEXT_SIDE))
    (out.text.aligned.square().mean() + out.region.aligned.square().mean()).backward()


def time_step(inputs, hierarchical: bool, repeats: int, device: str) -> float:
    step(inputs, hierarchical)  # warm-up
    times = []
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        step(inputs, hierarchical)
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def cuda_peak(inputs, hierarchical: bool) -> float:
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    step(inputs, hierarchical)
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - base) / 2**20


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def cpu_peak_here(inputs, hierarchical: bool) -> float:
    """Peak resident memory added by one step (MiB): the high-water mark is reset through
    /proc/self/clear_refs (Linux), then read back after the step."""
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")
    before = _status_kib("VmRSS")
    step(inputs, hierarchical)
    return (_status_kib("VmHWM") - before) / 1024


def cpu_peak(items: int, n_t: int, n_p: int, hierarchical: bool, threads: int = 1) -> float:
    """:func:`cpu_peak_here` in a fresh process, so no memory cached by an earlier step hides the peak."""
    code = (
        f"import sys, torch; torch.set_num_threads({threads}); sys.path[:0] = {sys.path[:1]!r}; "
        f"import bench_alignment as b; b.GATHERED = {GATHERED}; b.TEXT_SIDE = {TEXT_SIDE!r}; "
        f"print(b.cpu_peak_here(b.make_inputs({items}, {n_t}, {n_p}, 'cpu'), {hierarchical}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def live_peak(inputs, hierarchical: bool) -> float:
    """Peak MiB held by live tensors during one forward and backward (after the caller's warm-up), from the
    profiler's memory events in the order they happened: each operator's own allocations less its frees, and the
    frees outside operators."""
    from torch.profiler import ProfilerActivity, profile

    for tensor in (inputs[1], inputs[4], *(p for module in inputs[0] for p in module.parameters())):
        tensor.grad = None
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step(inputs, hierarchical)
    held = peak = 0
    for event in sorted(prof.events(), key=lambda e: e.time_range.start):
        held += event.cpu_memory_usage if event.name == "[memory]" else event.self_cpu_memory_usage
        peak = max(peak, held)
    return peak / 2**20


def count_flops(inputs, hierarchical: bool) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        step(inputs, hierarchical)
    return counter.get_total_flops()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--items", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", default=None, help="Also write the rows to this JSON file.")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads of every timed process (pinned).")
    parser.add_argument("--image-side", choices=["masked", "gathered"], default="masked")
    parser.add_argument("--text-side", choices=["auto", "grouped", "masked"], default="auto")
    parser.add_argument("--flops", action="store_true", help="count matrix FLOPs instead of timing")
    args = parser.parse_args()
    global GATHERED, TEXT_SIDE
    GATHERED, TEXT_SIDE = args.image_side == "gathered", args.text_side
    if args.flops:
        for n_t in (32, 64, 128):
            for n_p in (256, 1024):
                hier, dense = (count_flops(make_inputs(args.items, n_t, n_p, "cpu"), h) / 1e9 for h in (True, False))
                print(
                    f"n_t {n_t:4d} n_p {n_p:5d}: hierarchical {hier:.3f} GFLOP, dense {dense:.3f} GFLOP, "
                    f"dense / hierarchical {dense / hier:.2f}"
                )
        return
    torch.set_num_threads(args.threads)
    rows = []
    device_name = torch.cuda.get_device_name() if args.device == "cuda" else f"cpu x{torch.get_num_threads()} threads"
    print(f"{args.items} items per batch, d={D}, heads={HEADS}, k_r={K_R}, k_s={K_S}, k_p={K_P}, device {device_name}")
    header = ("n_t", "n_p", "hier ms", "dense ms", "time ratio", "hier MiB", "dense MiB", "mem ratio")
    header += ("live hier", "live dense", "live ratio") if args.device == "cpu" else ()
    layout = "{:>4} {:>5} | {:>8} {:>9} {:>10} | {:>9} {:>9} {:>9}" + " | {:>9} {:>10} {:>10}" * (len(header) > 8)
    print(layout.format(*header))
    for n_t in (32, 64, 128):
        for n_p in (16, 64, 128, 256, 1024):
            inputs = make_inputs(args.items, n_t, n_p, args.device)
            t_h = time_step(inputs, True, args.repeats, args.device)
            t_d = time_step(inputs, False, args.repeats, args.device)
            if args.device == "cuda":
                m_h, m_d = cuda_peak(inputs, True), cuda_peak(inputs, False)
            else:
                m_h = cpu_peak(args.items, n_t, n_p, True, args.threads)
                m_d = cpu_peak(args.items, n_t, n_p, False, args.threads)
            row = {"n_t": n_t, "n_p": n_p, "hier_ms": t_h * 1e3, "dense_ms": t_d * 1e3}
            row.update(hier_mib=m_h, dense_mib=m_d)
            line = (
                f"{n_t:>4} {n_p:>5} | {t_h * 1e3:8.2f} {t_d * 1e3:9.2f} {t_h / t_d:10.2f} | "
                f"{m_h:9.1f} {m_d:9.1f} {m_h / max(m_d, 1e-9):9.2f}"
            )
            if args.device == "cpu":
                row["hier_live_mib"], row["dense_live_mib"] = live_peak(inputs, True), live_peak(inputs, False)
                line += f" | {row['hier_live_mib']:9.1f} {row['dense_live_mib']:10.1f}"
                line += f" {row['hier_live_mib'] / row['dense_live_mib']:10.2f}"
            rows.append(row)
            print(line, flush=True)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"device": device_name, "items": args.items, "rows": rows}, handle, indent=2)


if __name__ == "__main__":
    main()

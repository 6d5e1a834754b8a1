"""One training on 2 processes x 1 thread against 1 process x 1 thread: epoch seconds, speed-up, memory per rank.

Usage: python benchmarks/bench_distributed.py [--cases small,clothing] [--models lightgcn,mdrchca] [--nproc 2]
       [--parallel batch|columns] [--profile-dir DIR]

``--parallel`` is the trainer's option for the ``--nproc`` processes (``batch``: DDP over each rank's share of
the batch; ``columns``: each rank its columns of the embedding tables, models with ``column_parallel``).

Each case is started twice with ``torch.distributed.run --standalone`` (gloo): once with one process, once with
``--nproc``, every process pinned to one thread (``OMP_NUM_THREADS=1``, ``num_threads=1``), one after the other
so they never share the cores. Each rank builds the same synthetic catalogue (``bench_epoch_cost.synthetic``,
same seed), times the trainer's own epoch (the second one, after a warm-up) and one validation, takes the
slowest rank's seconds and reports every rank's peak resident memory. The speed-up is the one-process seconds
over the N-process seconds of the same case in the same run of this script.

- ``small``: the bundled catalogue's size (3,000 users, 1,000 items, 60,000 interactions; 32 tokens, 16 regions).
- ``clothing``: Amazon Clothing's size (39,387 users, 23,033 items, 278,677 interactions; 64 tokens, 64
  regions), 64 dims.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from bench_epoch_cost import AMAZON_SIZES

CASES = {
    "small": (3000, 1000, 60000, 32, 16, 64),
    "clothing": (*AMAZON_SIZES["clothing"], 64, 64, 64),
}


def rank_main(case: str, model: str, parallel: str = "batch", profile_dir: str = "") -> None:
    """One rank: build the case, time a warm-up and a timed epoch and one validation, print rank 0's JSON.

    With ``profile_dir`` every rank also writes the seconds of its timed epoch's phases (``phase_timer``)
    and a ``torch.profiler`` table of its operators over 20 more steps to ``profile_dir``."""
    import torch
    import torch.distributed as dist

    sys.path.insert(0, str(Path(__file__).parent))
    import mdrchca.models  # noqa: F401  (registers the models)
    from bench_epoch_cost import synthetic
    from mdrchca.config import Config
    from mdrchca.training import Trainer
    from phase_timer import timed_phases

    torch.set_num_threads(1)
    data = synthetic(*CASES[case])
    config = Config.load(model, overrides=["device=cpu", "num_threads=1", "epochs=2", f"parallel={parallel}"])
    trainer = Trainer(config, data, progress=False)
    seconds = {}
    phases: dict[str, float] = {}
    for epoch in (1, 2):
        trainer.epoch = epoch
        if epoch == 2 and profile_dir:
            timed_phases(trainer, phases)
        start = time.perf_counter()
        trainer.train_epoch()
        seconds["train_s"] = trainer._slowest(time.perf_counter() - start)
        own_seconds = time.perf_counter() - start
    if profile_dir:
        write_profile(trainer, Path(profile_dir), f"{case}-{model}-{parallel}", phases, own_seconds)
    start = time.perf_counter()
    trainer.evaluate("valid")
    seconds["valid_s"] = trainer._slowest(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    peaks = [peak]
    if dist.is_initialized():
        peaks = [None] * dist.get_world_size()
        dist.all_gather_object(peaks, peak)
    if trainer.ranks.is_main:
        print("RESULT " + json.dumps({**seconds, "peak_rss_gib_per_rank": [round(p, 3) for p in peaks]}))
    trainer.close()


def write_profile(trainer, folder: Path, label: str, phases: dict[str, float], epoch_s: float) -> None:
    """This rank's phase seconds of the timed epoch, and an operator table of 20 more steps, to ``folder``."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    from mdrchca.models.base import Batch
    from phase_timer import with_backward

    ranks = trainer.ranks
    name = f"{label}-np{ranks.world_size}-rank{ranks.rank}"
    folder.mkdir(parents=True, exist_ok=True)
    phases = with_backward({"epoch": epoch_s, **phases})
    (folder / f"{name}-phases.json").write_text(json.dumps(phases, indent=1))
    batches = trainer.sampler.epoch(trainer.config.train.batch_size)
    trainer.model.train()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _, (users, pos, neg) in zip(range(20), batches, strict=False):
            trainer.step(Batch(users, pos, neg))
    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=40)
    (folder / f"{name}-ops.txt").write_text(f"# 20 steps, torch {torch.__version__}\n{table}\n")


def run_ranks(script: str, nproc: int, arguments: list[str], label: str) -> dict:
    """``script --rank-of ARGUMENTS`` started by ``torch.distributed.run --standalone`` on ``nproc`` processes of
    one thread each; the JSON of rank 0's last ``RESULT`` line (one error line with the stderr's end if none)."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}", script]
    env = os.environ | {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    done = subprocess.run([*command, "--rank-of", *arguments], env=env, capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"{label} x{nproc} failed:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1].removeprefix("RESULT "))


def launch(case: str, model: str, nproc: int, parallel: str = "batch", profile_dir: str = "") -> dict:
    return run_ranks(__file__, nproc, [case, model, parallel, profile_dir], f"{case} {model}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", default="small,clothing")
    parser.add_argument("--models", default="lightgcn,mdrchca")
    parser.add_argument("--nproc", type=int, default=2)
    parser.add_argument("--parallel", choices=("batch", "columns"), default="batch")
    parser.add_argument(
        "--profile-dir",
        default="",
        help="also write each rank's phase seconds and operator table of the timed epoch to this folder",
    )
    parser.add_argument("--rank-of", nargs=4, metavar=("CASE", "MODEL", "PARALLEL", "PROFILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rank_of:
        rank_main(*args.rank_of)
        return
    print(
        f"# cpus: {os.cpu_count()}; every process one thread; {args.nproc} processes (parallel={args.parallel})"
        " against 1",
        flush=True,
    )
    for case in args.cases.split(","):
        for model in args.models.split(","):
            one = launch(case, model, 1, profile_dir=args.profile_dir)
            many = launch(case, model, args.nproc, args.parallel, args.profile_dir)
            row = {
                "case": case,
                "model": model,
                "parallel": args.parallel,
                "train_s_1": round(one["train_s"], 3),
                f"train_s_{args.nproc}": round(many["train_s"], 3),
                "train_speedup": round(one["train_s"] / many["train_s"], 2),
                "valid_s_1": round(one["valid_s"], 3),
                f"valid_s_{args.nproc}": round(many["valid_s"], 3),
                "valid_speedup": round(one["valid_s"] / many["valid_s"], 2),
                "peak_rss_gib_1": one["peak_rss_gib_per_rank"],
                f"peak_rss_gib_{args.nproc}": many["peak_rss_gib_per_rank"],
            }
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()

"""Adam's kernels timed in one process (a throwaway kept beside its output, not a benchmark): for each model, two
trainers on the same data and seed, ``optimizer_kernel=loop`` (torch's CPU default, the trainer's until session 23)
and ``fused``, one training epoch of each in turn, round by round, after a warm-up epoch; the speed-up is taken round
by round. One thread.

    python docs/results/optimizer-s23/ab_optimizer.py --data data/ml100k-64 --rounds 6
    python docs/results/optimizer-s23/ab_optimizer.py --suite baby --rounds 3
"""

import argparse
import json
import statistics
import sys
import time

import torch

sys.path.insert(0, "benchmarks")
from bench_epoch_cost import cpu_trainer, synthetic  # noqa: E402

from mdrchca.data import load_dataset  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=None)
    parser.add_argument("--suite", choices=("baby",), default=None)
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = load_dataset(args.data) if args.data else synthetic(19_445, 7_050, 160_792, 64, 64, 64)
    out = {}
    for model in ("lightgcn", "mdrchca"):
        trainers = {k: cpu_trainer(model, data, f"optimizer_kernel={k}", "epochs=100") for k in ("loop", "fused")}
        seconds = {k: [] for k in trainers}
        for trainer in trainers.values():
            trainer.epoch = 1
            trainer.train_epoch()
        for r in range(args.rounds):
            for k in ("loop", "fused") if r % 2 == 0 else ("fused", "loop"):
                trainers[k].epoch += 1
                start = time.perf_counter()
                trainers[k].train_epoch()
                seconds[k].append(time.perf_counter() - start)
        by_round = [a / b for a, b in zip(seconds["loop"], seconds["fused"], strict=True)]
        out[model] = {
            "loop_s": [round(x, 3) for x in seconds["loop"]],
            "fused_s": [round(x, 3) for x in seconds["fused"]],
            "speedup_by_round": [round(x, 3) for x in by_round],
            "speedup_median": round(statistics.median(by_round), 3),
        }
        print(model, json.dumps(out[model]), flush=True)


if __name__ == "__main__":
    main()

"""Where one ML-100K epoch of MDR-CHCA goes, on this commit's code, one thread.

Usage: python docs/results/session24-final/where_the_epoch_goes.py [DATA]   (default data/ml100k-64)

Two warm-up epochs with validation, then (1) the seconds of each phase over two epochs (``phase_timer`` plus the
step's content, ``step_content``), per epoch; (2) the operator calls of one training epoch of LightGCN and of
MDR-CHCA (top-level ATen calls, backward included, from the profiler); (3) the share of the operator time that the
matrix products and the top-k take, in a training epoch and in the validation pass.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_epoch_cost import cpu_trainer  # noqa: E402
from mdrchca.data import load_dataset  # noqa: E402
from phase_timer import _wrap, timed_phases, with_backward  # noqa: E402

PRODUCTS = ("aten::mm", "aten::bmm", "aten::addmm")


def warmed(model: str, data):
    trainer = cpu_trainer(model, data, "epochs=6")
    for epoch in (1, 2):
        trainer.epoch = epoch
        trainer.train_epoch()
        trainer.evaluator.evaluate(trainer.model, "valid")
    return trainer


def shares(prof) -> str:
    rows = [e for e in prof.key_averages() if e.key.startswith("aten::")]
    total = sum(e.self_cpu_time_total for e in rows)
    products = sum(e.self_cpu_time_total for e in rows if e.key in PRODUCTS)
    topk = sum(e.self_cpu_time_total for e in rows if e.key == "aten::topk")
    return f"matrix products {products / total:.0%}, top-k {topk / total:.0%} of {total / 1e6:.3f} s operator time"


def top_level_calls(prof) -> int:
    def top(event) -> bool:
        parent = event.cpu_parent
        return event.name.startswith("aten::") and (parent is None or not parent.name.startswith("aten::"))

    return sum(1 for event in prof.events() if top(event))


def main() -> None:
    torch.set_num_threads(1)
    data = load_dataset(sys.argv[1] if len(sys.argv) > 1 else "data/ml100k-64")
    trainer = warmed("mdrchca", data)
    seconds: dict[str, float] = {}
    timed_phases(trainer, seconds)
    _wrap(trainer.model, "step_content", "forward.step_content", seconds)
    for epoch in (3, 4):
        trainer.epoch = epoch
        trainer.train_epoch()
        trainer.evaluator.evaluate(trainer.model, "valid")
    print("MDR-CHCA phases, s per epoch:", {k: round(v / 2, 3) for k, v in with_backward(seconds).items()})
    for model in ("lightgcn", "mdrchca"):
        trainer = warmed(model, data)
        trainer.epoch = 3
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            trainer.train_epoch()
        print(f"{model}: {top_level_calls(prof)} operator calls in a training epoch; {shares(prof)}")
        if model == "mdrchca":
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                trainer.evaluator.evaluate(trainer.model, "valid")
            print(f"{model} validation: {shares(prof)}")


if __name__ == "__main__":
    main()

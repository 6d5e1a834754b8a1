"""Session 21's masks timed in one process (a throwaway kept beside its output, not a benchmark): MDR-CHCA's
content branch with the attention's screen, score product and self-attention denoiser of the code before the
change (``--old-src``, the parent commit's ``src``: ``git archive 9a63f0b src | tar -x -C out/old-src``) and as
committed, alternated round by round so that the machine's drift falls on both. ``pass``: the pass over every item
without gradients (validation, the cache refresh); ``train``: ten forward + backward passes of 16 items (a step's
budget on ML-100K's 64 + 64 positions).

    PYTHONPATH=src python docs/results/masks-s21/ab_in_process.py --data data/ml100k-64 --old-src out/old-src/src \\
        --mode pass --rounds 15
"""

import argparse
import importlib.util
import json
import statistics
import sys
import time

import torch

import mdrchca.models.mdrchca.alignment as new_alignment
import mdrchca.models.mdrchca.denoising as new_denoising
from mdrchca.config import Config
from mdrchca.data import load_dataset
from mdrchca.training import build_model


def load_module(path: str, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--old-src", required=True)
    parser.add_argument("--mode", choices=("pass", "train"), default="pass")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    torch.set_num_threads(1)
    old_alignment = load_module(f"{args.old_src}/mdrchca/models/mdrchca/alignment.py", "old_alignment")
    old_denoising = load_module(f"{args.old_src}/mdrchca/models/mdrchca/denoising.py", "old_denoising")
    config = Config.load("mdrchca", overrides=["device=cpu", "num_threads=1"])
    config.data.data_path = args.data
    torch.manual_seed(0)
    model = build_model(config, load_dataset(args.data, config.data))
    attention, denoiser = new_alignment.CrossModalAttention, new_denoising.SelfAttentionDenoiser
    methods = {
        "before": (old_alignment.CrossModalAttention, old_denoising.SelfAttentionDenoiser),
        "after": (attention, denoiser),
    }
    committed = {name: getattr(attention, name) for name in ("_screen", "_dense_screen")}, denoiser.forward

    def use(name: str) -> None:
        old_attention, old_denoiser = methods[name]
        for method in ("_screen", "_dense_screen"):
            setattr(attention, method, committed[0][method] if name == "after" else getattr(old_attention, method))
        denoiser.forward = committed[1] if name == "after" else old_denoiser.forward

    items = torch.randperm(model.n_items, generator=torch.Generator().manual_seed(1))[:16]

    def work() -> torch.Tensor:
        if args.mode == "pass":
            model.eval()
            return model.all_fused_content()
        model.train()
        context = tuple(c.detach() if c is not None else None for c in model.content_branch.graph_context())
        for _ in range(10):
            out = model.content_branch(items, context)
            out.fused.sum().backward()
        return out.fused.detach()

    seconds: dict[str, list[float]] = {"before": [], "after": []}
    results = {}
    for round_ in range(args.rounds + 1):  # round 0 warms both up
        for name in ("before", "after"):
            use(name)
            start = time.perf_counter()
            results[name] = work()
            if round_:
                seconds[name].append(time.perf_counter() - start)
    by_round = [b / a for b, a in zip(seconds["before"], seconds["after"], strict=True)]
    print(
        json.dumps(
            {
                "mode": args.mode,
                "before_s": [round(x, 4) for x in seconds["before"]],
                "after_s": [round(x, 4) for x in seconds["after"]],
                "before_median_s": round(statistics.median(seconds["before"]), 4),
                "after_median_s": round(statistics.median(seconds["after"]), 4),
                "speedup_by_round_median": round(statistics.median(by_round), 3),
                "speedup_range": [round(min(by_round), 3), round(max(by_round), 3)],
                "largest_difference": float((results["before"] - results["after"]).abs().max()),
            }
        )
    )


if __name__ == "__main__":
    main()

"""MDR-CHCA's content branch with the alignment module of another commit against this tree's, in one process.

Usage: python benchmarks/bench_alignment_ab.py --data data/ml100k-64 --before 9222d72 [--items 32] [--rounds 5]

One thread. Loads ``src/mdrchca/models/mdrchca/alignment.py`` as it was at ``--before`` (``git show``) beside
the installed one, builds MDR-CHCA with its defaults on the dataset, and times the content branch forward (no
gradients) and forward + backward of ``fused.sum()`` with each module in turn, alternated ``--rounds`` times
on new random items each round, so that the machine's drift falls on both. The attention modules keep their
weights; only their class and :func:`align` are swapped (a commit whose ``AlignmentPlan`` has no
``text_side`` field gets the grouped token side, as its code did). Prints the largest differences of
the fused content, the confidences and the parameter gradients between the two, the medians in ms per item
and the speed-up of this tree over ``--before`` round by round.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

import mdrchca.models  # noqa: F401  (registers the models)
import mdrchca.models.mdrchca.content as content
from bench_content_pass import branch_ms_per_item  # a script beside this one
from mdrchca.config import Config
from mdrchca.data.dataset import load_dataset
from mdrchca.models.mdrchca import alignment as current
from mdrchca.training.trainer import build_model

MODULE = "src/mdrchca/models/mdrchca/alignment.py"


def load_alignment_at(commit: str, into: Path):
    """The alignment module as it was at ``commit``, imported under the name ``alignment_before``."""
    root = Path(__file__).resolve().parent.parent
    source = subprocess.run(["git", "show", f"{commit}:{MODULE}"], cwd=root, capture_output=True, text=True, check=True)
    path = into / "alignment_before.py"
    path.write_text(source.stdout)
    spec = importlib.util.spec_from_file_location("alignment_before", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["alignment_before"] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


def use(module, branch) -> None:
    """Point the content branch at ``module``'s align, plan and attention class."""
    fields = {f.name for f in dataclasses.fields(module.AlignmentPlan)}

    def plan(*args, **kwargs):
        return module.AlignmentPlan(*args, **{k: v for k, v in kwargs.items() if k in fields})

    content.align, content.AlignmentPlan = module.align, plan
    for attention in (branch.text_to_region, branch.region_to_text):
        attention.__class__ = module.CrossModalAttention


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--before", required=True, help="the commit whose alignment module is the reference")
    parser.add_argument("--items", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = Config.load("mdrchca", overrides=["device=cpu", "num_threads=1"])
    config.data.data_path = args.data
    dataset = load_dataset(args.data, config.data)
    torch.manual_seed(0)
    model = build_model(config, dataset)
    model.train()
    branch = model.content_branch
    context = tuple(c.detach() if c is not None else None for c in branch.graph_context())
    with tempfile.TemporaryDirectory() as folder:
        modules = {"before": load_alignment_at(args.before, Path(folder)), "now": current}
    generator = torch.Generator().manual_seed(1)
    times: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        items = torch.randperm(dataset.n_items, generator=generator)[: args.items]
        for label, module in modules.items():
            use(module, branch)
            for name, ms in branch_ms_per_item(model, context, items, args.repeats).items():
                times.setdefault(f"{name}_{label}", []).append(ms)
    outputs = {}
    for label, module in modules.items():
        use(module, branch)
        model.zero_grad(set_to_none=True)
        out = branch(items, context, model.thresholds)
        out.fused.sum().backward()
        grads = [p.grad.clone() for p in model.parameters() if p.grad is not None]
        outputs[label] = (out.fused.detach(), out.text_confidence.detach(), out.region_confidence.detach(), grads)
    use(current, branch)
    before, now = outputs["before"], outputs["now"]
    row: dict = {"before": args.before, "items": args.items, "rounds": args.rounds}
    for i, name in enumerate(("fused", "text_confidence", "region_confidence")):
        row[f"max_difference_{name}"] = float((before[i] - now[i]).abs().max())
    row["max_difference_gradients"] = max(float((a - b).abs().max()) for a, b in zip(before[3], now[3], strict=True))
    for name in ("forward", "forward_backward"):
        a, b = times[f"{name}_before"], times[f"{name}_now"]
        row[f"{name}_before_ms_per_item"] = round(statistics.median(a), 4)
        row[f"{name}_now_ms_per_item"] = round(statistics.median(b), 4)
        row[f"{name}_speedup_by_round"] = [round(x / y, 2) for x, y in zip(a, b, strict=True)]
        row[f"{name}_speedup_median"] = round(statistics.median(x / y for x, y in zip(a, b, strict=True)), 2)
    print(json.dumps(row))


if __name__ == "__main__":
    main()

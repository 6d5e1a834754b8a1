"""Two versions of the code timed in one process: MDR-CHCA of an earlier commit against the working tree.

Usage: python benchmarks/ab_in_process.py --data data/ml100k-64 --old HEAD~1 --mode pass [--rounds 9]

The earlier commit's ``src/mdrchca`` is extracted (``git archive``) into ``out/ab-in-process/<commit>/`` and its
imports renamed to a second package, ``mdrchca_old``, so that both versions load side by side. Each builds
MDR-CHCA's trainer on the same data with the same seed, one thread, and the two are timed in turn round by round,
so that the machine's drift falls on both; the speed-up is taken round by round (old seconds / new seconds).

``pass``: the pass over every item without gradients (validation, the cache refresh); ``train``: ten forward +
backward passes of the content of items 0-15 with L_conf (a step's budget on ML-100K's 64 + 64 positions; by
``step_content`` where the code has it, else ``content``); ``epoch``: one training epoch of each trainer, its
validation after it. Prints one JSON line: the seconds of both, the speed-up by round and its median, and the
largest difference between the two versions' last outputs (rounding, or the versions compute something else).
Sessions 22 and 23 ran earlier copies of this script (in git history at 806bec9, beside their outputs in
``docs/results/candidates-s22/`` and ``docs/results/padding-s23/``).
"""

from __future__ import annotations

import argparse
import importlib
import io
import json
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent


def old_package(revision: str) -> Path:
    """The folder holding ``mdrchca_old``, the commit ``revision``'s package with its imports renamed (built once)."""
    commit = subprocess.run(
        ["git", "rev-parse", "--verify", f"{revision}^{{commit}}"], cwd=ROOT, capture_output=True, text=True
    )
    if commit.returncode:
        sys.exit(f"--old {revision}: not a commit of this repository; give a revision such as HEAD~1")
    folder = ROOT / "out" / "ab-in-process" / commit.stdout.strip()
    package = folder / "mdrchca_old"
    if package.is_dir():
        return folder
    archive = subprocess.run(["git", "archive", commit.stdout.strip(), "src/mdrchca"], cwd=ROOT, capture_output=True)
    staging = folder.with_name(folder.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)  # an earlier extraction cut short
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(staging, filter="data")
    for source in (staging / "src" / "mdrchca").rglob("*.py"):
        text = re.sub(r"\bmdrchca\.", "mdrchca_old.", source.read_text())  # mdrchca.x -> mdrchca_old.x ...
        text = re.sub(r"\.mdrchca_old\b", ".mdrchca", text)  # ... but models.mdrchca stays the subpackage's name
        source.write_text(re.sub(r"\bfrom mdrchca import", "from mdrchca_old import", text))
    folder.mkdir(parents=True, exist_ok=True)
    (staging / "src" / "mdrchca").rename(package)
    shutil.rmtree(staging)
    return folder


def build(package: str, data_path: str, epochs: int):
    config_module = importlib.import_module(f"{package}.config")
    data_module = importlib.import_module(f"{package}.data")
    training = importlib.import_module(f"{package}.training")
    config = config_module.Config.load("mdrchca", overrides=["device=cpu", "num_threads=1", f"epochs={epochs}"])
    config.data.data_path = data_path
    torch.manual_seed(0)
    return training.Trainer(config, data_module.load_dataset(data_path, config.data), progress=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--old", default="HEAD", help="the earlier commit (default HEAD: against uncommitted work)")
    parser.add_argument("--mode", choices=("pass", "train", "epoch"), default="pass")
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    sys.path.insert(0, str(old_package(args.old)))
    torch.set_num_threads(1)
    epochs = args.rounds + 2
    trainers = {"before": build("mdrchca_old", args.data, epochs), "after": build("mdrchca", args.data, epochs)}
    items = torch.arange(16)
    last: dict[str, torch.Tensor] = {}

    def once(name: str) -> float:
        trainer = trainers[name]
        model = trainer.model
        start = time.perf_counter()
        if args.mode == "pass":
            with torch.no_grad():
                fused = model._all_fused()
        elif args.mode == "train":
            for _ in range(10):
                out = getattr(model, "step_content", model.content)(items)
                (out.fused.sum() + model.contrastive_loss(out)).backward()
            fused = out.fused
        else:
            trainer.epoch += 1
            trainer.train_epoch()
            trainer.evaluator.evaluate(model, "valid")
            fused = model.content_cache
        seconds = time.perf_counter() - start
        last[name] = fused.detach().clone()
        return seconds

    for name, trainer in trainers.items():
        trainer.epoch = 0
        once(name)  # warm-up
    seconds: dict[str, list[float]] = {name: [] for name in trainers}
    for _ in range(args.rounds):
        for name in trainers:
            seconds[name].append(once(name))
    by_round = [b / a for b, a in zip(seconds["before"], seconds["after"], strict=True)]
    print(
        json.dumps(
            {
                "mode": args.mode,
                "old": args.old,
                "rounds": args.rounds,
                "before_s": [round(x, 4) for x in seconds["before"]],
                "after_s": [round(x, 4) for x in seconds["after"]],
                "speedup_by_round": [round(x, 3) for x in by_round],
                "speedup_median": round(statistics.median(by_round), 3),
                "largest_difference_of_the_last_output": float((last["before"] - last["after"]).abs().max()),
            }
        )
    )


if __name__ == "__main__":
    main()

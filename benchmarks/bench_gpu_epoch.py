"""Issue 22's GPU measurement, prepared to run in one call on a lent GPU machine (and on the CPU, to check it).

Usage: python benchmarks/bench_gpu_epoch.py --data data/ml100k-64 [--device cuda] [--epochs 2]
           [--cases ml100k,clothing] [--compile off,on] [--compile-backend inductor] [--out FILE.jsonl]
           [--set [MODEL:]KEY=VALUE ...]

For each case (``ml100k``: the dataset folder ``--data``, ML-100K's token / region features; ``clothing``: the
Clothing-sized synthetic catalogue of ``bench_epoch_cost.py``, 39,387 users, 23,033 items, 278,677
interactions, 64 tokens, 64 regions, 64 dims), each model (LightGCN, MDR-CHCA with its defaults) and each
``--compile`` setting, it times the epoch *as trained*: the trainer's ``train_epoch`` and the validation pass
that follows it (``eval_every=1``; MDR-CHCA's content-cache refresh reuses that pass). The first epoch is a
warm-up whose seconds are reported apart (``first_epoch_s``: with ``torch.compile`` it includes compiling);
then ``--epochs`` epochs are timed and their median kept. On CUDA every reading follows a
``torch.cuda.synchronize()`` and the peak memory is the allocator's (``torch.cuda.max_memory_allocated``); on
the CPU it is the process's resident high-water mark so far.

``compile=on`` wraps the trainer's training forward (the module that computes a batch's loss, any model) in
``torch.compile`` and, for MDR-CHCA, compiles its content branch in place, which the validation pass and the
cache refresh run without gradients. ``--compile-backend eager`` traces with dynamo without generating
kernels (a quick check that the compiled path runs at all).

The peers' published seconds per epoch on Amazon Clothing (from the authors' logs, their GPUs: LGMRec 4.3 s,
PGL 8.8 s, DA-MRS 7.1 s) are printed beside the Clothing-sized case as context; their hardware differs, so
they are not a like-for-like comparison.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time

import torch

from bench_epoch_cost import AMAZON_SIZES, synthetic
from mdrchca.config import Config
from mdrchca.data.dataset import RecDataset
from mdrchca.experiments.plans import overrides_for
from mdrchca.training import Trainer

PEERS_CLOTHING_S = {"LGMRec": 4.3, "PGL": 8.8, "DA-MRS": 7.1}


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _peak_gib(device: str) -> float:
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def compiled(trainer: Trainer, backend: str) -> None:
    """Compile ``trainer``'s training forward and, where the model has one, its content branch."""
    trainer._step_module = torch.compile(trainer._step_module, backend=backend)
    branch = getattr(trainer.model, "content_branch", None)
    if branch is not None:
        branch.compile(backend=backend)


def timed_epoch(trainer: Trainer, epoch: int, device: str) -> tuple[float, float]:
    """Seconds of one epoch's training and of the validation pass that follows it."""
    trainer.epoch = epoch
    _sync(device)
    start = time.perf_counter()
    trainer.train_epoch()
    _sync(device)
    middle = time.perf_counter()
    trainer.evaluate("valid")
    _sync(device)
    return middle - start, time.perf_counter() - middle


def medians(train_s: list[float], valid_s: list[float]) -> dict:
    """Median training, validation and whole-epoch seconds over the timed epochs."""
    return {
        "train_s": statistics.median(train_s),
        "valid_s": statistics.median(valid_s),
        "epoch_s": statistics.median(t + v for t, v in zip(train_s, valid_s, strict=True)),
    }


def append_row(path: str | None, row: dict) -> None:
    if path:
        with open(path, "a") as handle:
            handle.write(json.dumps(row) + "\n")


def time_epochs(
    model: str,
    data: RecDataset,
    device: str,
    epochs: int,
    compile_backend: str | None,
    overrides: tuple[str, ...] = (),
) -> dict:
    """The first epoch's seconds and the median of ``epochs`` more, training and validation apart."""
    config = Config.load(model, overrides=[f"device={device}", f"epochs={epochs + 1}", *overrides])
    trainer = Trainer(config, data, progress=False)
    if compile_backend:
        compiled(trainer, compile_backend)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    first_s = sum(timed_epoch(trainer, 1, device))
    train_s, valid_s = zip(*(timed_epoch(trainer, epoch, device) for epoch in range(2, epochs + 2)), strict=True)
    return {"first_epoch_s": first_s, **medians(list(train_s), list(valid_s)), "peak_gib": _peak_gib(device)}


def alternate_chunks(data: RecDataset, device: str, epochs: int, chunks: list[int]) -> list[dict]:
    """LightGCN and MDR-CHCA at each of ``chunks`` (``content_chunk``), one trainer each, their epochs taken in
    turn (LightGCN, then each chunk) so that a drift of the machine falls on all of them alike; the first round
    is a warm-up. Medians over ``epochs`` rounds, training and validation apart."""
    runs = {"lightgcn": Trainer(Config.load("lightgcn", overrides=[f"device={device}"]), data, progress=False)}
    for chunk in chunks:
        config = Config.load("mdrchca", overrides=[f"device={device}", f"content_chunk={chunk}"])
        runs[f"mdrchca content_chunk={chunk}"] = Trainer(config, data, progress=False)
    seconds: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in runs}
    for epoch in range(1, epochs + 2):
        for name, trainer in runs.items():
            train, valid = timed_epoch(trainer, epoch, device)
            if epoch > 1:
                seconds[name][0].append(train)
                seconds[name][1].append(valid)
    rows = []
    for name, (train_s, valid_s) in seconds.items():
        rows.append({"name": name, **medians(train_s, valid_s), "train_by_round": train_s, "valid_by_round": valid_s})
    return rows


def load_case(name: str, data_dir: str | None) -> RecDataset:
    if name == "ml100k":
        if not data_dir:
            raise SystemExit("--data: the ml100k case needs a dataset folder with token / region features")
        from mdrchca.data import load_dataset

        return load_dataset(data_dir)
    if name == "clothing":
        return synthetic(*AMAZON_SIZES["clothing"], 64, 64, 64)
    if name == "tiny":  # a check of this script on the CPU in seconds
        return synthetic(300, 100, 3000, 16, 8, 16)
    raise SystemExit(f"--cases: unknown case {name!r}; choose from ml100k, clothing, tiny")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="ML-100K token / region dataset folder (the ml100k case)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--cases", default="ml100k,clothing")
    parser.add_argument("--models", default="lightgcn,mdrchca")
    parser.add_argument("--compile", default="off,on", help="off, on, or both (off,on)")
    parser.add_argument("--compile-backend", default="inductor")
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs after the warm-up one")
    parser.add_argument("--out", default=None, help="append one JSON line per measurement to this file")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an option of every timed run (MODEL:KEY=VALUE for one model's runs), e.g. mdrchca:content_chunk=1024",
    )
    parser.add_argument(
        "--chunks",
        default=None,
        help="e.g. 64,1024: instead of the compile grid, LightGCN and MDR-CHCA at each content_chunk, epochs in turn",
    )
    args = parser.parse_args()
    if args.device == "cpu":
        torch.set_num_threads(1)
    settings = [s for s in args.compile.split(",") if s]
    if set(settings) - {"off", "on"}:
        raise SystemExit(f"--compile {args.compile}: use off, on or off,on")
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu, one thread"
    print(f"device: {name}; torch {torch.__version__}", flush=True)
    for case in args.cases.split(","):
        data = load_case(case, args.data)
        if args.chunks:
            chunk_rows = alternate_chunks(data, args.device, args.epochs, [int(c) for c in args.chunks.split(",")])
            for row in chunk_rows:
                ratio = row["epoch_s"] / chunk_rows[0]["epoch_s"]
                print(
                    f"{case} {row['name']}: epoch as trained {row['epoch_s']:.3f} s (training {row['train_s']:.3f}"
                    f" + validation {row['valid_s']:.3f}), {ratio:.2f}x LightGCN's",
                    flush=True,
                )
                append_row(args.out, {**row, "case": case, "device": name, "alternated": True})
            continue
        rows = {}
        models = args.models.split(",")
        for model in models:
            for setting in settings:
                backend = args.compile_backend if setting == "on" else None
                mine = overrides_for(model, args.overrides, models)
                try:
                    row = time_epochs(model, data, args.device, args.epochs, backend, mine)
                except Exception as error:  # a compile failure is a result to report, not a reason to stop
                    row = {"error": f"{type(error).__name__}: {error}"[:500]}
                row.update(case=case, model=model, compile=setting, backend=backend, device=name, overrides=list(mine))
                rows[model, setting] = row
                if "error" in row:
                    print(f"{case} {model} compile={setting}: {row['error']}", flush=True)
                else:
                    print(
                        f"{case} {model} compile={setting} {' '.join(mine)}: epoch as trained {row['epoch_s']:.3f} s "
                        f"(training {row['train_s']:.3f} + validation {row['valid_s']:.3f}), first epoch "
                        f"{row['first_epoch_s']:.1f} s, peak {row['peak_gib']:.2f} GiB",
                        flush=True,
                    )
                append_row(args.out, row)
        for setting in settings:
            light, mdr = rows.get(("lightgcn", setting)), rows.get(("mdrchca", setting))
            if light and mdr and "epoch_s" in light and "epoch_s" in mdr:
                print(f"{case} compile={setting}: MDR-CHCA / LightGCN = {mdr['epoch_s'] / light['epoch_s']:.2f}x")
        if case == "clothing":
            print("peers on Amazon Clothing, their GPUs (context only):", PEERS_CLOTHING_S)


if __name__ == "__main__":
    main()

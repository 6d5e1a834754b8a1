"""MDR-CHCA's training epoch against LightGCN's on the same data, one thread, in the same process.

Usage: python benchmarks/bench_epoch_cost.py [--suite small|scaling|paper|all] [--exact] [--budgets 64,1024]
       python benchmarks/bench_epoch_cost.py --data DATASET_DIR [--budgets 64] [--exact] [--phases] [--floor]
           [--rounds N]
       python benchmarks/bench_epoch_cost.py --suite sweep [--factors 1,2,4,8,16] [--sample-steps 40]

Each case builds a synthetic catalogue in memory: interactions with a Zipf-shaped item popularity, and
random token / region features (``n_t`` tokens in phrases of 8, ``n_p`` regions, ``d`` dims). It then times one
training epoch (Adam steps over shuffled BPR batches of 2048, the trainer's own ``train_epoch``) of LightGCN and
of MDR-CHCA with its defaults (the cached content path, ``content_grad_items=1024``), with each of ``--budgets``
(other ``content_grad_items``), and with ``--exact`` also of the exact path (``content_grad_items=0``) where it is
affordable. The first epoch of each model is a
warm-up; the second is timed. Every timing runs with ``torch.set_num_threads(1)``. Ratios are MDR-CHCA / LightGCN.

A budget's ratio is the epoch seconds with that ``content_grad_items`` (and no limit by positions,
``content_grad_positions=0``) over LightGCN's. The default budget is ``content_grad_positions=4096`` token and
region slots per step (``content_grad_items=1024`` at most).

An epoch timed alone includes MDR-CHCA's content-cache refresh (a full pass without gradients). In training,
validation follows every epoch (``eval_every=1``) and the refresh reuses its pass, so the ``small`` suite and
``--data`` also time the epoch *as trained*: training plus validation seconds of each model, and their ratio.
With ``--floor`` (``--data`` or the ``paper`` suite) the epoch as trained also gets its *arithmetic floor*:
the matrix FLOPs of each model's epoch counted by ``torch.utils.flop_counter`` (split into the steps' forward,
the content branch inside it, and validation), this thread's dense matmul rate, and LightGCN's measured epoch
plus MDR-CHCA's extra FLOPs at that rate, as a ratio to LightGCN's epoch: no engineering of the same
arithmetic gets the ratio below it.

A single epoch of each model, timed one after the other, gives a ratio that this 2-core machine moves by a
third within minutes (4.6x to 6.5x on ML-100K tokens in session 20). ``--rounds N`` (with ``--data``, ``small`` or
``paper``) therefore also builds both trainers in one process and takes their epochs as trained in turn, N times
after a warm-up epoch each, and reports the ratio round by round and its median (``ratio_alternated``).

- ``small``: 1,000 items, 3,000 users, 60,000 interactions, n_t = 32, n_p = 16 (the bundled catalogue's size
  and feature shapes with the demo's extraction), d = 64.
- ``scaling``: 1x, 2x, 4x, 8x of 1,000 items, 20 interactions per item (users in proportion), n_t = 32,
  n_p = 64: epoch seconds and the log-log slope against interactions.
- ``paper``: Baby-sized (19,445 users, 7,050 items, 160,792 interactions) and Clothing-sized (39,387 users,
  23,033 items, 278,677 interactions), 64 tokens, 64 regions, 64 dims; each in its own process, with its peak
  resident memory.
- ``sweep``: the Baby-sized catalogue times each of ``--factors`` (users, items and interactions all scaled;
  default 1,2,4,8,16), 64 tokens, 64 regions, 64 dims, each in its own process with its peak resident memory;
  one epoch each without a warm-up (at these sizes the first epoch's extra cost is small against the epoch),
  and the log-log slope of each model's seconds against interactions. With ``--sample-steps K`` the epoch is
  *estimated* instead of run whole: the epoch start (MDR-CHCA's content-cache refresh, a full pass) is timed,
  then two untimed steps, then ``K`` timed steps, and the epoch is the start plus the mean step times the
  epoch's number of steps. Every step of an epoch propagates the whole graph and recomputes the same budget of
  content, so its cost does not depend on which step it is; ``--sample-steps`` with ``--factors 1,2`` next to
  a whole-epoch run of the same factors checks the estimate.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from bench_content_pass import median_seconds
from mdrchca.config import Config
from mdrchca.data.dataset import RecDataset
from mdrchca.data.features import ModalityFeatures
from mdrchca.data.split import random_split
from mdrchca.models.base import Batch
from mdrchca.training import Trainer
from phase_timer import timed_phases, with_backward

AMAZON_SIZES = {"baby": (19_445, 7_050, 160_792), "clothing": (39_387, 23_033, 278_677)}
"""Users, items and interactions of Amazon Baby and Clothing (MMRec's 5-core versions), for synthetic catalogues of
their sizes."""


def synthetic(n_users: int, n_items: int, n_inter: int, n_t: int, n_p: int, d: int, seed: int = 0) -> RecDataset:
    rng = np.random.default_rng(seed)
    popularity = 1.0 / np.arange(1, n_items + 1) ** 0.8
    items = rng.choice(n_items, size=int(n_inter * 1.3), p=popularity / popularity.sum())
    users = rng.integers(0, n_users, size=len(items))
    pairs = np.unique(np.stack([users, items], 1), axis=0)
    pairs = pairs[rng.permutation(len(pairs))[:n_inter]]
    labels = random_split(pairs[:, 0], (0.8, 0.1, 0.1), seed)
    g = torch.Generator().manual_seed(seed)
    token_mask = torch.ones(n_items, n_t, dtype=torch.bool)
    phrases = (torch.arange(n_t) // 8).expand(n_items, n_t).contiguous()
    text = ModalityFeatures("text", torch.randn(n_items, n_t, d, generator=g).half(), token_mask, phrases)
    image = ModalityFeatures(
        "image", torch.randn(n_items, n_p, d, generator=g).half(), torch.ones(n_items, n_p, dtype=torch.bool)
    )
    return RecDataset(
        "synthetic",
        n_users,
        n_items,
        pairs[labels == 0],
        pairs[labels == 1],
        pairs[labels == 2],
        {"text": text, "image": image},
    )


def cpu_trainer(model: str, data: RecDataset, *overrides: str) -> Trainer:
    """A trainer of ``model`` on ``data`` on the CPU with one thread (what every timing here builds)."""
    config = Config.load(model, overrides=["device=cpu", "num_threads=1", *overrides])
    return Trainer(config, data, progress=False)


def _timed_second_epoch(
    model: str, data: RecDataset, overrides: tuple, warm_up: bool, validate: bool, phases: dict | None = None
) -> tuple:
    """Training and validation seconds of the last of one or two epochs (validation only with ``validate``);
    with ``phases``, that epoch's phase seconds (``phase_timer.timed_phases``) are added to it."""
    trainer = cpu_trainer(model, data, "epochs=2", *overrides)
    train_s = valid_s = 0.0
    for epoch in (1, 2) if warm_up else (1,):
        trainer.epoch = epoch
        if phases is not None and epoch == (2 if warm_up else 1):
            timed_phases(trainer, phases)
        start = time.perf_counter()
        trainer.train_epoch()
        train_s = time.perf_counter() - start
        if validate:
            start = time.perf_counter()
            trainer.evaluator.evaluate(trainer.model, "valid")
            valid_s = time.perf_counter() - start
    return train_s, valid_s


def sampled_epoch_seconds(model: str, data: RecDataset, steps: int, untimed: int = 2) -> dict:
    """One epoch's seconds estimated from ``steps`` timed steps (after ``untimed`` ones): the epoch start (the
    content-cache refresh) timed whole, plus the mean step times the number of steps in an epoch."""
    trainer = cpu_trainer(model, data, "epochs=1")
    trainer.epoch = 1
    trainer.model.train()
    start = time.perf_counter()
    trainer.model.on_epoch_start(1)
    start_s = time.perf_counter() - start
    batch_size = trainer.config.train.batch_size
    n_batches = trainer.sampler.n_batches(batch_size)
    if untimed + steps > n_batches:
        raise ValueError(f"--sample-steps {steps}: an epoch has only {n_batches} steps; time it whole instead")
    batches = trainer.sampler.epoch(batch_size)
    step_s = []
    for index, (users, pos, neg) in enumerate(batches):
        if index == untimed + steps:
            break
        begin = time.perf_counter()
        trainer.step(Batch(users, pos, neg))
        if index >= untimed:
            step_s.append(time.perf_counter() - begin)
    mean_step = float(np.mean(step_s))
    return {
        "epoch_s": start_s + mean_step * n_batches,
        "start_s": start_s,
        "step_s": mean_step,
        "step_sd_s": float(np.std(step_s)),
        "steps_per_epoch": n_batches,
    }


def epoch_flops(model: str, data: RecDataset) -> dict[str, float]:
    """Matrix FLOPs of the second epoch as trained, counted by ``torch.utils.flop_counter`` (dense matmuls,
    batched matmuls and attention; sparse products and elementwise work are not counted): ``train`` (forward,
    backward and the epoch start), of which ``train_forward`` (the steps' losses) and ``train_forward_content``
    (MDR-CHCA's content branch inside them), and ``valid`` (the validation pass)."""
    trainer = cpu_trainer(model, data, "epochs=2")
    trainer.epoch = 1
    trainer.train_epoch()
    trainer.evaluator.evaluate(trainer.model, "valid")
    trainer.epoch = 2
    with FlopCounterMode(display=False) as counter:
        trainer.train_epoch()
    by_module = {name: sum(ops.values()) for name, ops in counter.get_flop_counts().items()}
    out = {
        "train": float(counter.get_total_flops()),
        "train_forward": float(by_module.get("_BatchLoss", 0)),
        "train_forward_content": float(by_module.get("_BatchLoss.model.content_branch", 0)),
    }
    with FlopCounterMode(display=False) as counter:
        trainer.evaluator.evaluate(trainer.model, "valid")
    out["valid"] = float(counter.get_total_flops())
    return out


def matmul_gflops(n: int = 512, repeats: int = 20) -> float:
    """GFLOP/s of a dense float32 square matmul of size ``n`` on this thread (``median_seconds`` of ``repeats``)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    return 2 * n**3 / median_seconds(lambda: a @ b, repeats) / 1e9


def arithmetic_floor(out: dict, data: RecDataset) -> dict:
    """The floor of MDR-CHCA's epoch as trained from its arithmetic: LightGCN's measured epoch (the graph work
    both models do) plus MDR-CHCA's extra matrix FLOPs at this thread's dense matmul rate, and that floor's
    ratio to LightGCN's epoch. No engineering of the same arithmetic can bring the ratio below it."""
    flops = {name: epoch_flops(name, data) for name in ("lightgcn", "mdrchca")}
    total = {name: split["train"] + split["valid"] for name, split in flops.items()}
    rate = matmul_gflops()
    lightgcn_s = out["lightgcn_train_v_s"] + out["lightgcn_valid_s"]
    extra_s = (total["mdrchca"] - total["lightgcn"]) / (rate * 1e9)
    return {
        "lightgcn_gflop": total["lightgcn"] / 1e9,
        "mdrchca_gflop": total["mdrchca"] / 1e9,
        "mdrchca_gflop_split": {key: round(value / 1e9, 2) for key, value in flops["mdrchca"].items()},
        "matmul_gflops": rate,
        "floor_mdrchca_s": lightgcn_s + extra_s,
        "floor_ratio": (lightgcn_s + extra_s) / lightgcn_s,
    }


def epoch_seconds(model: str, data: RecDataset, *overrides: str, warm_up: bool = True) -> float:
    """Seconds of one training epoch (the second, after a warm-up one, unless ``warm_up`` is off)."""
    return _timed_second_epoch(model, data, overrides, warm_up, validate=False)[0]


def epoch_seconds_as_trained(
    model: str, data: RecDataset, *overrides: str, phases: dict | None = None
) -> tuple[float, float]:
    """Training and validation seconds of the second epoch when validation follows every epoch, as ``fit``
    runs it by default (``eval_every=1``): MDR-CHCA's content cache then comes from the validation pass."""
    return _timed_second_epoch(model, data, overrides, warm_up=True, validate=True, phases=phases)


def epoch_as_trained(trainer: Trainer) -> float:
    """Seconds of the trainer's next training epoch and the validation pass after it (as ``fit`` runs them)."""
    trainer.epoch += 1
    start = time.perf_counter()
    trainer.train_epoch()
    trainer.evaluator.evaluate(trainer.model, "valid")
    return time.perf_counter() - start


def alternated_as_trained(data: RecDataset, rounds: int) -> dict:
    """The epoch as trained of both models taken in turn, ``rounds`` times, in this one process: a LightGCN
    and an MDR-CHCA trainer are built and warmed up by one epoch each, then each round times one epoch of each
    (training, then the validation pass that follows it), LightGCN first. The machine's drift between rounds
    falls on both, so the ratio is taken round by round (``ratio_by_round``) and its median kept
    (``ratio_alternated``). The trainers go on training from round to round, as a run does."""
    torch.set_num_threads(1)
    trainers = {name: cpu_trainer(name, data, f"epochs={rounds + 1}") for name in ("lightgcn", "mdrchca")}
    for trainer in trainers.values():
        trainer.epoch = 0
        epoch_as_trained(trainer)  # warm-up
    seconds: dict[str, list[float]] = {name: [] for name in trainers}
    for _ in range(rounds):
        for name, trainer in trainers.items():
            seconds[name].append(epoch_as_trained(trainer))
    by_round = [m / lg for m, lg in zip(seconds["mdrchca"], seconds["lightgcn"], strict=True)]
    return {
        "rounds": rounds,
        "lightgcn_as_trained_by_round_s": [round(x, 3) for x in seconds["lightgcn"]],
        "mdrchca_as_trained_by_round_s": [round(x, 3) for x in seconds["mdrchca"]],
        "ratio_by_round": [round(x, 2) for x in by_round],
        "ratio_alternated": statistics.median(by_round),
    }


def time_models(
    data: RecDataset,
    exact: bool,
    budgets: tuple = (),
    warm_up: bool = True,
    as_trained: bool = False,
    phases: bool = False,
    sample_steps: int = 0,
    floor: bool = False,
    rounds: int = 0,
) -> dict:
    """LightGCN's and MDR-CHCA's epoch seconds on ``data`` (default budget, each of ``budgets``, the exact
    path with ``exact``), the ratios to LightGCN and this process's peak resident memory; with ``phases`` (and
    ``as_trained``) each model's epoch as trained split into its phases (``<model>_phases``); with
    ``sample_steps`` the epochs are estimated from that many steps (:func:`sampled_epoch_seconds`); with
    ``rounds`` both models' epochs as trained are also alternated that many times (:func:`alternated_as_trained`)."""
    torch.set_num_threads(1)
    if sample_steps:
        out: dict = {"sampled_steps": sample_steps}
        for name in ("lightgcn", "mdrchca"):
            sampled = sampled_epoch_seconds(name, data, sample_steps)
            out[f"{name}_s"] = sampled.pop("epoch_s")
            out.update({f"{name}_{key}": value for key, value in sampled.items()})
    else:
        out = {"lightgcn_s": epoch_seconds("lightgcn", data, warm_up=warm_up)}
        out["mdrchca_s"] = epoch_seconds("mdrchca", data, warm_up=warm_up)
    out["ratio"] = out["mdrchca_s"] / out["lightgcn_s"]
    if as_trained:
        for name in ("lightgcn", "mdrchca"):
            split: dict[str, float] | None = {} if phases else None
            out[f"{name}_train_v_s"], out[f"{name}_valid_s"] = epoch_seconds_as_trained(name, data, phases=split)
            if split is not None:
                out[f"{name}_phases"] = with_backward(split)
        out["ratio_as_trained"] = (out["mdrchca_train_v_s"] + out["mdrchca_valid_s"]) / (
            out["lightgcn_train_v_s"] + out["lightgcn_valid_s"]
        )
    for budget in budgets:
        out[f"budget_{budget}_s"] = epoch_seconds(
            "mdrchca", data, f"content_grad_items={budget}", "content_grad_positions=0", warm_up=warm_up
        )
    if floor and as_trained:
        out.update(arithmetic_floor(out, data))
    if exact:
        out["mdrchca_exact_s"] = epoch_seconds("mdrchca", data, "content_grad_items=0", warm_up=warm_up)
        out["exact_ratio"] = out["mdrchca_exact_s"] / out["lightgcn_s"]
    if rounds:
        out.update(alternated_as_trained(data, rounds))
    out["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return out


def case(
    n_users: int,
    n_items: int,
    n_inter: int,
    n_t: int,
    n_p: int,
    d: int,
    exact: bool,
    budgets: tuple = (),
    warm_up: bool = True,
    as_trained: bool = False,
    sample_steps: int = 0,
    floor: bool = False,
    rounds: int = 0,
) -> dict:
    """The timings of one synthetic catalogue (``floor`` also times the epoch as trained, for its floor; ``rounds``
    the epoch as trained of both models alternated, :func:`alternated_as_trained`)."""
    start = time.perf_counter()
    data = synthetic(n_users, n_items, n_inter, n_t, n_p, d)
    shape = {"users": n_users, "items": n_items, "interactions": n_inter, "n_t": n_t, "n_p": n_p, "d": d}
    shape["build_s"] = time.perf_counter() - start
    as_trained = as_trained or floor
    timings = time_models(
        data, exact, budgets, warm_up, as_trained, sample_steps=sample_steps, floor=floor, rounds=rounds
    )
    return {**shape, **timings}


def real_case(
    path: str,
    exact: bool,
    budgets: tuple = (),
    as_trained: bool = True,
    phases: bool = False,
    floor: bool = False,
    rounds: int = 0,
) -> dict:
    """The same timings on a dataset folder (its token / region features); with ``rounds``, also the epoch as
    trained of both models alternated that many times (:func:`alternated_as_trained`)."""
    from mdrchca.data import load_dataset

    data = load_dataset(path)
    text, image = data.features["text"], data.features["image"]
    interactions = len(data.train) + len(data.valid) + len(data.test)
    shape = {"users": data.n_users, "items": data.n_items, "interactions": interactions}
    shape.update(n_t=text.max_length, n_p=image.max_length, d=text.dim)
    timings = time_models(data, exact, budgets, as_trained=as_trained, phases=phases, floor=floor, rounds=rounds)
    return {**shape, **timings}


def in_subprocess(args: list) -> dict:
    code = (
        "import json, sys; sys.path.insert(0, 'benchmarks'); from bench_epoch_cost import case; "
        f"print(json.dumps(case(*{args!r})))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def show(row: dict) -> None:
    line = (
        f"items {row['items']:>6} inter {row['interactions']:>7} n_t {row['n_t']:>3} n_p {row['n_p']:>3}: "
        f"LightGCN {row['lightgcn_s']:7.2f} s, MDR-CHCA {row['mdrchca_s']:7.2f} s, ratio {row['ratio']:5.1f}"
    )
    for key in row:
        if key.startswith("budget_"):
            line += f"; {key[7:-2]} items {row[key]:7.2f} s, ratio {row[key] / row['lightgcn_s']:5.1f}"
    if "ratio_as_trained" in row:
        line += (
            f"; as trained (training + validation each epoch): LightGCN {row['lightgcn_train_v_s']:.2f} + "
            f"{row['lightgcn_valid_s']:.2f} s, "
            f"MDR-CHCA {row['mdrchca_train_v_s']:.2f} + {row['mdrchca_valid_s']:.2f} s, "
            f"ratio {row['ratio_as_trained']:.1f}"
        )
    if "ratio_alternated" in row:
        line += (
            f"; as trained, alternated {row['rounds']} times: ratio {row['ratio_alternated']:.2f} (median by round; "
            f"{min(row['ratio_by_round']):.2f}-{max(row['ratio_by_round']):.2f})"
        )
    if "mdrchca_exact_s" in row:
        line += f"; exact path {row['mdrchca_exact_s']:7.2f} s, ratio {row['exact_ratio']:5.1f}"
    for name in ("lightgcn", "mdrchca"):
        if f"{name}_step_s" in row:
            line += (
                f"; {name} start {row[f'{name}_start_s']:.2f} s + {row[f'{name}_steps_per_epoch']} steps x "
                f"{row[f'{name}_step_s']:.3f} s (sd {row[f'{name}_step_sd_s']:.3f})"
            )
    if "floor_ratio" in row:
        line += (
            f"; matrix GFLOP per epoch as trained: LightGCN {row['lightgcn_gflop']:.1f}, MDR-CHCA "
            f"{row['mdrchca_gflop']:.1f} ({row['mdrchca_gflop_split']}); "
            f"matmul {row['matmul_gflops']:.0f} GFLOP/s; arithmetic floor "
            f"{row['floor_mdrchca_s']:.2f} s, ratio {row['floor_ratio']:.1f}"
        )
    print(line + f"; peak RSS {row['peak_rss_gib']:.2f} GiB", flush=True)
    if "ratio_by_round" in row:
        by_round = {key: row[key] for key in row if "by_round" in key}
        print(f"alternated: {json.dumps(by_round)}", flush=True)
    for key in row:
        if key.endswith("_phases"):
            print(f"{key}: {json.dumps(row[key])}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", choices=["small", "scaling", "paper", "sweep", "all"], default="all")
    parser.add_argument("--factors", default="1,2,4,8,16", help="Baby-size multiples of the sweep suite.")
    parser.add_argument("--exact", action="store_true", help="Also time the exact path (small and scaling only).")
    parser.add_argument("--budgets", default="64", help="Other content_grad_items values to time, comma-separated.")
    parser.add_argument("--data", default=None, help="Time on this dataset folder instead of the synthetic suites.")
    parser.add_argument(
        "--floor",
        action="store_true",
        help="--data or the paper suite: the epoch's arithmetic floor (FLOPs at matmul rate)",
    )
    parser.add_argument(
        "--sample-steps", type=int, default=0, help="sweep: estimate each epoch from this many timed steps (0: whole)"
    )
    parser.add_argument(
        "--phases", action="store_true", help="With --data: also split each model's epoch as trained into phases."
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=0,
        help="--data, small or paper: also alternate both models' epochs as trained this many times in one process",
    )
    args = parser.parse_args()
    if args.rounds < 0:
        parser.error(f"--rounds {args.rounds}: give 0 (no alternated rounds) or a positive number of rounds")
    if args.rounds and not args.data and args.suite not in ("small", "paper", "all"):
        parser.error(f"--rounds: the {args.suite} suite does not alternate; use it with --data, small or paper")
    budgets = tuple(int(b) for b in args.budgets.split(",") if b)
    if args.data:
        show(real_case(args.data, args.exact, budgets, phases=args.phases, floor=args.floor, rounds=args.rounds))
        return
    if args.suite in ("small", "all"):
        print("== small (bundled-catalogue size)")
        show(in_subprocess([3000, 1000, 60_000, 32, 16, 64, args.exact, budgets, True, True, 0, False, args.rounds]))
    if args.suite in ("scaling", "all"):
        print("== scaling (20 interactions per item)")
        rows = [
            in_subprocess([3 * 1000 * f, 1000 * f, 20_000 * f, 32, 64, 64, args.exact, budgets]) for f in (1, 2, 4, 8)
        ]
        for row in rows:
            show(row)
        for key in ("mdrchca_s", "lightgcn_s", "mdrchca_exact_s", *(f"budget_{b}_s" for b in budgets)):
            if key in rows[0]:
                x = np.log([r["interactions"] for r in rows])
                y = np.log([r[key] for r in rows])
                print(f"log-log slope of {key} against interactions: {np.polyfit(x, y, 1)[0]:.2f}")
    if args.suite == "sweep":
        how = f"estimated from {args.sample_steps} steps" if args.sample_steps else "one epoch, no warm-up"
        print(f"== sweep (Baby-sized times each factor; 64 tokens, 64 regions, 64 dims; {how})")
        factors = [int(f) for f in args.factors.split(",")]
        baby = AMAZON_SIZES["baby"]
        rows = []
        for factor in factors:  # each shown as it finishes: the largest take the better part of an hour
            shape = [*(n * factor for n in baby), 64, 64, 64]
            rows.append(in_subprocess([*shape, False, (), False, False, args.sample_steps]))
            show(rows[-1])
        if len(rows) > 1:
            x = np.log([r["interactions"] for r in rows])
            for key in ("lightgcn_s", "mdrchca_s"):
                slope = np.polyfit(x, np.log([r[key] for r in rows]), 1)[0]
                print(f"log-log slope of {key} against interactions: {slope:.2f}")
        return
    if args.suite in ("paper", "all"):
        print("== paper-sized (64 tokens, 64 regions, 64 dims)")
        for spec in AMAZON_SIZES.values():
            show(in_subprocess([*spec, 64, 64, 64, False, budgets, False, False, 0, args.floor, args.rounds]))


if __name__ == "__main__":
    main()

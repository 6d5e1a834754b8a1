"""LightGCN trained with its embedding columns split across processes: a prototype of the split that
docs/scaling.md proposes for one training on many processes, timed against one process and checked against
it step by step.

Usage: python benchmarks/bench_column_parallel.py [--size clothing] [--nproc 2] [--steps 30]

LightGCN's propagation acts on each column of the embeddings alone, :math:`(\\hat A E)_{:,c} = \\hat A E_{:,c}`,
so rank :math:`r` of :math:`N` holds only the columns :math:`C_r` of :math:`E^{(0)}` (a contiguous
``tensor_split``), propagates them over the whole graph with no communication, and contributes the partial
scores :math:`s^{(r)}_{ui} = \\sum_{c \\in C_r} e_{uc} e_{ic}` of the whole global batch. One all-reduce of
:math:`2B` numbers gives every rank the full scores :math:`s = \\sum_r s^{(r)}`; every rank computes the same BPR
loss from them, and its backward is the identity (each rank differentiates the same loss with respect to its
own partial scores). The L2 penalty is a sum over columns, so each rank adds its columns' share. Adam is
element-wise, so each rank's optimiser on its columns is the one-process optimiser on those columns: the
training is the one-process training up to the order of the sums in the scores.

What it measures (every process one thread): the milliseconds per step (propagation forward and backward, loss,
Adam) of one process over all 64 columns and of ``--nproc`` processes over their columns, the slowest rank's,
after ``--warmup`` steps; the speed-up; and the largest difference between the one-process and the split
losses over the timed steps (the same seed, the same batches).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

from bench_epoch_cost import AMAZON_SIZES, synthetic


def rank_main(size: str, steps: int, warmup: int, dim: int, layers: int) -> None:
    import numpy as np
    import torch
    import torch.distributed as dist

    from mdrchca.data.graph import symmetric_normalized_adjacency, to_torch_sparse
    from mdrchca.data.sampler import BPRSampler
    from mdrchca.models.base import bpr_loss
    from mdrchca.models.components.propagation import propagate

    torch.set_num_threads(1)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if world > 1:
        dist.init_process_group("gloo")

    class SumOverRanks(torch.autograd.Function):
        """Forward: the sum of every rank's tensor; backward: the identity (every rank's loss is the same)."""

        @staticmethod
        def forward(ctx, partial: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
            total = partial.clone()
            if world > 1:
                dist.all_reduce(total)
            return total

        @staticmethod
        def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
            return grad

    data = synthetic(*AMAZON_SIZES[size], 1, 1, 8)
    adjacency = to_torch_sparse(symmetric_normalized_adjacency(data.matrix("train")))
    n_users = data.n_users
    torch.manual_seed(2026)
    full = torch.nn.init.xavier_uniform_(torch.empty(data.n_users + data.n_items, dim))
    columns = torch.tensor_split(torch.arange(dim), world)[rank]
    table = torch.nn.Parameter(full[:, columns].clone())
    optimizer = torch.optim.Adam([table], lr=1e-3)
    sampler = BPRSampler(data.train, data.n_items, seed=0)
    reg_weight = 1e-4
    losses, seconds = [], []
    batches = sampler.epoch(2048)
    for step in range(warmup + steps):
        users, pos, neg = (torch.as_tensor(np.asarray(t)) for t in next(batches))
        start = time.perf_counter()
        final = propagate(adjacency, table, layers, symmetric=True)
        u, i, j = final[users], final[n_users + pos], final[n_users + neg]
        scores = SumOverRanks.apply(torch.stack([(u * i).sum(1), (u * j).sum(1)]))
        ranking = bpr_loss(scores[0], scores[1])
        rows = table[torch.cat([users, n_users + pos, n_users + neg])]
        reg = rows.pow(2).sum() / (2 * len(users))  # this rank's columns' share of embedding_l2
        loss = ranking + reg_weight * reg
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        elapsed = time.perf_counter() - start
        if step >= warmup:
            seconds.append(elapsed)
            total_reg = SumOverRanks.apply(reg.detach().reshape(1))[0]
            losses.append(float(ranking.detach() + reg_weight * total_reg))
    per_step = statistics.median(seconds)
    if world > 1:
        slowest = torch.tensor([per_step])
        dist.all_reduce(slowest, op=dist.ReduceOp.MAX)
        per_step = float(slowest[0])
    if rank == 0:
        print("RESULT " + json.dumps({"ms_per_step": 1000 * per_step, "losses": losses}))
    if world > 1:
        dist.destroy_process_group()


def launch(args: argparse.Namespace, nproc: int) -> dict:
    from bench_distributed import run_ranks

    arguments = [args.size, str(args.steps), str(args.warmup), str(args.dim), str(args.layers)]
    return run_ranks(__file__, nproc, arguments, "LightGCN split by columns")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=sorted(AMAZON_SIZES), default="clothing")
    parser.add_argument("--nproc", type=int, default=2)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2, help="alternations of the one- and N-process runs")
    parser.add_argument("--rank-of", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rank_of:
        size, steps, warmup, dim, layers = args.rank_of
        rank_main(size, int(steps), int(warmup), int(dim), int(layers))
        return
    for round_ in range(args.rounds):
        one, split = launch(args, 1), launch(args, args.nproc)
        gap = max(abs(a - b) for a, b in zip(one["losses"], split["losses"], strict=True))
        result = {
            "size": args.size,
            "round": round_ + 1,
            "nproc": args.nproc,
            "ms_per_step_1": round(one["ms_per_step"], 2),
            f"ms_per_step_{args.nproc}": round(split["ms_per_step"], 2),
            "speed_up": round(one["ms_per_step"] / split["ms_per_step"], 2),
            "largest_loss_difference": gap,
            "first_and_last_loss": [one["losses"][0], one["losses"][-1]],
        }
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()

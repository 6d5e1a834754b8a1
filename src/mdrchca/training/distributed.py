"""One training on several processes (``torchrun``): who this process is, its share of each batch, and the
few collectives the trainer needs.

Data parallel over the triples of each global batch. Every rank builds the same model from the same seed,
draws the same global batch from the same sampler, and takes its contiguous share of it. Rank :math:`r`
holds :math:`n_r` of the batch's :math:`B` triples and back-propagates its loss scaled by
:math:`w_r = n_r N / B`; DDP averages the gradients over the :math:`N` ranks, so for a loss of the form
:math:`\\frac{1}{B}\\sum_k \\ell_k + R(\\theta)` the reduced gradient is exactly the one-process gradient:

.. math::
    \\frac{1}{N}\\sum_r w_r \\nabla\\Big(\\frac{1}{n_r}\\sum_{k \\in r} \\ell_k + R\\Big)
    = \\nabla\\Big(\\frac{1}{B}\\sum_k \\ell_k\\Big) + \\nabla R .

Models whose loss compares the triples of a batch with each other (in-batch contrastive negatives, a norm
over the batch) declare ``batch_separable = False``: on several ranks each sees its share as the batch, which
is a different (smaller-batch) loss; the trainer says so when it starts.

With ``parallel=columns`` (models with ``column_parallel``) rank :math:`r` instead holds the columns
:math:`C_r` of the embedding tables, propagates them over the whole graph and scores the whole global batch on
them: the partial scores :math:`s^{(r)}_{ui} = \\sum_{c \\in C_r} e_{uc} e_{ic}` are summed over the ranks by
:class:`SumOverRanks` (an all-reduce forward, the identity backward: every rank then computes the same loss and
differentiates it with respect to its own columns). Adam is element-wise, so each rank's optimiser on its columns
is one process's on those columns; no gradient is reduced. Checkpoints hold whole tables (gathered by columns),
so a run resumes on any number of processes.

The full-ranking evaluation is split by users (rank :math:`r` ranks users :math:`r, r + N, \\dots`) and the
per-user metrics gathered back into the one-process order, so the means are the same numbers. Rank 0 owns
the run folder: it alone writes checkpoints, logs and metrics.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from mdrchca.errors import ConfigError

log = logging.getLogger(__name__)

_joined_here = False  # whether ranks_from_environment joined the process group (then leave_process_group leaves it)


@dataclass(frozen=True)
class Ranks:
    """This process's place in a training: ``rank`` of ``world_size`` (one process: 0 of 1)."""

    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        """The process that writes the run folder and shows progress."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def share(self, rows: int) -> slice:
        """This rank's contiguous share of ``rows`` rows (``torch.tensor_split``'s split: sizes differ by at
        most one, the first ranks taking the extra rows)."""
        base, extra = divmod(rows, self.world_size)
        start = self.rank * base + min(self.rank, extra)
        return slice(start, start + base + (self.rank < extra))


def environment_rank() -> int:
    """This process's rank as ``torchrun`` sets it (0 when not started by it): known before the process group
    is joined, so rank 0 alone checks and creates the run folder."""
    return int(os.environ.get("RANK", "0")) if _environment_world_size() > 1 else 0


def _environment_world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def _local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def ranks_from_environment(device: torch.device) -> Ranks:
    """Join the process group ``torchrun`` describes in ``WORLD_SIZE`` / ``RANK`` (gloo on the CPU, NCCL on
    GPUs, each rank on the GPU of its ``LOCAL_RANK``); one process when those are not set."""
    world_size = _environment_world_size()
    if world_size <= 1:
        return Ranks()
    rank = int(os.environ["RANK"])
    if not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(_local_rank())
        backend = "nccl" if device.type == "cuda" else "gloo"
        try:
            dist.init_process_group(backend)
            global _joined_here
            _joined_here = True
        except (RuntimeError, ValueError) as exc:
            raise ConfigError(
                f"cannot join the {world_size}-process training ({exc.__class__.__name__}: {str(exc).splitlines()[0]});"
                " start every process with torchrun (torchrun --nproc-per-node N -m mdrchca train ...)"
            ) from None
    if dist.get_world_size() != world_size or dist.get_rank() != rank:
        raise ConfigError(f"WORLD_SIZE={world_size} RANK={rank} disagree with the process group; use torchrun")
    return Ranks(rank, world_size)


def leave_process_group() -> None:
    """Leave the process group :func:`ranks_from_environment` joined, once every rank has got here.

    Called by :meth:`~mdrchca.training.trainer.Trainer.close` once a training has finished on every rank and
    nothing holds the group any more (DDP freed first). Without it gloo's worker threads outlive the interpreter,
    and a rank that has finished can abort (SIGABRT, ``terminate called without an active exception``) as it
    exits, failing the whole ``torchrun``. Nothing on one process, nor when the caller joined the group itself
    (it leaves it); after a failure it is not called, since the other ranks may be inside a collective.
    """
    global _joined_here
    if _joined_here and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
    _joined_here = False


def local_device(device: torch.device) -> torch.device:
    """The GPU of this rank (``LOCAL_RANK``) when training on CUDA with several processes."""
    if device.type == "cuda" and _environment_world_size() > 1 and device.index is None:
        return torch.device("cuda", _local_rank())
    return device


def all_reduce(values: torch.Tensor, ranks: Ranks, op: str = "sum") -> torch.Tensor:
    """``values`` summed (``op="sum"``) or maximised (``"max"``) over the ranks; unchanged on one process."""
    if not ranks.distributed:
        return values
    reduced = values.clone()
    dist.all_reduce(reduced, op=dist.ReduceOp.SUM if op == "sum" else dist.ReduceOp.MAX)
    return reduced


def gather_strided_rows(local: torch.Tensor, total: int, ranks: Ranks) -> torch.Tensor:
    """Rows ``[total, ...]`` in their one-process order, from each rank's rows ``rank, rank + N, ...``.

    Each rank pads its rows to ``ceil(total / N)``; the gathered ``[N, m, ...]`` block, read rank-fastest, is the
    original order with the padding at its end.
    """
    if not ranks.distributed:
        return local
    per_rank = -(-total // ranks.world_size)
    padded = torch.zeros((per_rank, *local.shape[1:]), dtype=local.dtype, device=local.device)
    padded[: len(local)] = local
    gathered = [torch.empty_like(padded) for _ in range(ranks.world_size)]
    dist.all_gather(gathered, padded)
    return torch.stack(gathered, dim=1).reshape(per_rank * ranks.world_size, *local.shape[1:])[:total]


def broadcast(values: torch.Tensor, ranks: Ranks) -> None:
    """``values`` replaced, in place, by rank 0's on every rank; nothing on one process."""
    if ranks.distributed:
        dist.broadcast(values, 0)


def barrier(ranks: Ranks) -> None:
    """Wait until every rank gets here (e.g. until rank 0 has written a checkpoint the others read)."""
    if ranks.distributed:
        dist.barrier()


class SumOverRanks(torch.autograd.Function):
    """Forward: the element-wise sum of every rank's tensor (all-reduce). Backward: the incoming gradient as it
    is, since every rank computes the same loss from the sum and the gradient of a sum with respect to one of
    its terms is the gradient of the sum."""

    @staticmethod
    def forward(ctx, partial: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        total = partial.clone()
        dist.all_reduce(total)
        return total

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return grad


def gather_columns(local: torch.Tensor, ranks: Ranks) -> torch.Tensor:
    """The whole ``[n, width]`` tensor from every rank's contiguous columns ``[n, width_r]``, on every rank (no
    gradient)."""
    if not ranks.distributed:
        return local
    widths = [torch.zeros(1, dtype=torch.long) for _ in range(ranks.world_size)]
    dist.all_gather(widths, torch.tensor([local.shape[1]]))
    parts = [torch.empty(local.shape[0], int(w), dtype=local.dtype, device=local.device) for w in widths]
    dist.all_gather(parts, local.detach().contiguous())
    return torch.cat(parts, dim=1)


class GatherRowsOverRanks(torch.autograd.Function):
    """Forward: :func:`gather_strided_rows` (every rank's rows ``rank, rank + N, ...`` in one-process order, on
    every rank). Backward: the gradients of the whole ``[total, ...]`` tensor summed over the ranks, and this
    rank's rows of the sum: with ``parallel=columns`` each rank's loss reaches the gathered rows through its own
    columns only, so the sum is the whole gradient of each row."""

    @staticmethod
    def forward(ctx, local: torch.Tensor, total: int, ranks: Ranks) -> torch.Tensor:  # type: ignore[override]
        ctx.ranks, ctx.count = ranks, len(local)
        return gather_strided_rows(local, total, ranks)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:  # type: ignore[override]
        summed = grad.contiguous().clone()
        dist.all_reduce(summed)
        return summed[ctx.ranks.rank :: ctx.ranks.world_size][: ctx.count], None, None

"""One trainer for every model: Adam, shuffled BPR batches, early stopping on validation."""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from tqdm import tqdm

from mdrchca.config import Config
from mdrchca.data.dataset import RecDataset
from mdrchca.data.sampler import BPRSampler
from mdrchca.errors import ConfigError, MdrchcaError
from mdrchca.evaluation.evaluator import Evaluator
from mdrchca.io import write_text
from mdrchca.models import Recommender, get_model_class
from mdrchca.models.base import Batch, ColumnCollectives
from mdrchca.training.checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_model_state,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from mdrchca.training.distributed import (
    GatherRowsOverRanks,
    SumOverRanks,
    all_reduce,
    barrier,
    broadcast,
    gather_columns,
    gather_strided_rows,
    leave_process_group,
    local_device,
    ranks_from_environment,
)
from mdrchca.training.reproducibility import resolve_device, set_seed
from mdrchca.training.run_folder import BEST_CHECKPOINT, LAST_CHECKPOINT, LOG_FILE, METRICS_FILE, PER_USER_FILE

log = logging.getLogger(__name__)

STATE_KEYS = (
    "model",
    "optimizer",
    "sampler",
    "rng",
    "epoch",
    "best_epoch",
    "best_score",
    "best_valid",
    "bad_evaluations",
    "history",
)


def build_model(config: Config, dataset: RecDataset) -> Recommender:
    """Instantiate the configured model on ``dataset``; one line when it does not fit in memory."""
    try:
        return get_model_class(config.model)(dataset, config.model_params)
    except (RuntimeError, MemoryError) as exc:
        if not isinstance(exc, MemoryError) and "allocate" not in str(exc):
            raise
        raise MdrchcaError(
            f"{config.model} does not fit in memory with embedding_size={config.model_params.embedding_size} for "
            f"{dataset.n_users} users and {dataset.n_items} items; lower embedding_size"
        ) from None


def check_fits(config: Config, dataset: RecDataset) -> None:
    """Options that must agree with the data, checked before anything is trained or written."""
    largest = max(config.train.topk)
    if largest > dataset.n_items:
        raise MdrchcaError(
            f"topk {largest} exceeds the {dataset.n_items} items of {dataset.name}; "
            f"set topk to cut-offs up to {dataset.n_items}, e.g. --set topk=[{min(10, dataset.n_items)}]"
        )


@dataclass
class TrainResult:
    """Outcome of :meth:`Trainer.fit`; ``test`` is measured once, at the best validation epoch."""

    best_epoch: int
    epochs: int
    seconds: float
    valid: dict[str, float]
    test: dict[str, float]
    history: list[dict[str, float]] = field(default_factory=list)

    def to_json(self, model: str, dataset: str, split_mode: str = "user") -> dict[str, Any]:
        train_seconds = [h["train_seconds"] for h in self.history]
        return {
            "model": model,
            "dataset": dataset,
            "split": split_mode,
            "best_epoch": self.best_epoch,
            "epochs": self.epochs,
            "seconds": round(self.seconds, 3),
            "seconds_per_epoch": round(sum(train_seconds) / max(1, len(train_seconds)), 3),
            "valid": self.valid,
            "test": self.test,
        }


class Trainer:
    """Trains ``config.model`` on ``dataset``; with ``run_dir``, logs and checkpoints there.

    Each epoch draws one uniform negative per training pair, steps Adam over shuffled batches,
    then evaluates on validation. The best validation state (strict improvement of
    ``valid_metric``) is checkpointed atomically to ``best.pt``; after ``patience`` evaluations
    without improvement training stops, the best state is restored and the test split is evaluated
    once. ``last.pt`` holds the state after each epoch, so an interrupted run resumes exactly.

    ``on_evaluation(epoch, score)`` is called after each validation with the ``valid_metric`` value; it may
    raise to stop training (a tuner's pruning), which propagates out of :meth:`fit`. With ``evaluate_test``
    false the test split is never ranked (a tuner selects on validation and must not see test at all).
    """

    def __init__(
        self,
        config: Config,
        dataset: RecDataset,
        run_dir: Path | str | None = None,
        progress: bool = True,
        on_evaluation: Callable[[int, float], None] | None = None,
        evaluate_test: bool = True,
    ) -> None:
        config.validate()
        check_fits(config, dataset)
        self.config = config
        self.dataset = dataset
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.on_evaluation = on_evaluation
        self.evaluate_test = evaluate_test
        tc = config.train
        if tc.num_threads > 0:
            torch.set_num_threads(tc.num_threads)
        if tc.deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # read when cuBLAS starts
        # process-wide: set both ways, or one deterministic run would slow every later run in the process
        torch.use_deterministic_algorithms(tc.deterministic, warn_only=True)
        self.device = local_device(resolve_device(tc.device))
        self.ranks = ranks_from_environment(self.device)
        self.progress = progress and self.ranks.is_main
        self.writes = self.run_dir is not None and self.ranks.is_main
        set_seed(tc.seed)
        self.model = build_model(config, dataset).to(self.device)
        self._step_module: torch.nn.Module = _BatchLoss(self.model)
        self.split_columns = self.ranks.distributed and tc.parallel == "columns"
        if self.split_columns:
            self._share_columns()
        elif self.ranks.distributed:
            self.model.share_batch(self.ranks.rank, self.ranks.world_size, self._gather_rows)
            self._step_module = _data_parallel(self._step_module, self.device)
            if not type(self.model).batch_separable and self.ranks.is_main:
                log.warning(
                    "%s's loss compares the triples of a batch with each other: on %d processes each sees its "
                    "share of the batch (%d triples) as the batch, a different training from one process",
                    config.model,
                    self.ranks.world_size,
                    -(-tc.batch_size // self.ranks.world_size),
                )
        self.optimizer = torch.optim.Adam(
            self.model.parameters(),
            lr=tc.learning_rate,
            weight_decay=tc.weight_decay,
            **adam_kernel(tc.optimizer_kernel, self.device),
        )
        self.sampler = BPRSampler(dataset.train, dataset.n_items, seed=tc.seed, negative_pool=dataset.negative_pool())
        self.evaluator = Evaluator(dataset, tc.topk, tc.eval_batch_size)
        self.epoch = 0
        self.best_epoch = 0
        self.best_score = -math.inf
        self.best_valid: dict[str, float] = {}
        self.bad_evaluations = 0
        self.history: list[dict[str, float]] = []
        self._best_model_state: dict[str, torch.Tensor] | None = None  # kept in memory without a run folder

    def _share_columns(self) -> None:
        """``parallel=columns``: each rank keeps its columns of the model's tables (a model without any is one
        error naming the option); no DDP: the tables' gradients need no reduction, and the shares of the other
        parameters' gradients are summed in :meth:`_sum_shared_gradients`."""
        if not type(self.model).column_parallel:
            raise ConfigError(
                f"parallel=columns: {self.config.model} cannot split its columns across processes;"
                " use parallel=batch (--set parallel=batch)"
            )
        ranks = self.ranks
        collectives = ColumnCollectives(
            SumOverRanks.apply,
            lambda local: gather_columns(local, ranks),
            lambda rows, total: GatherRowsOverRanks.apply(rows, total, ranks),
        )
        self.model.share_columns(ranks.rank, ranks.world_size, collectives)
        tables = set(type(self.model).column_parallel)
        named = list(self.model.named_parameters())  # the optimiser holds model.parameters() in this order
        self._split_indices = {i for i, (name, _) in enumerate(named) if name in tables}
        self._shared_parameters = [p for name, p in named if name not in tables]
        synced = set(_buffers_from_rank_0(self.model))
        self._synced_buffers = [buffer for name, buffer in self.model.named_buffers() if name in synced]

    def _sum_shared_gradients(self) -> None:
        """``parallel=columns``: each rank's share of the gradient of every parameter that is not split, summed
        over the ranks in one flat all-reduce."""
        grads = [p.grad for p in self._shared_parameters if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        flat = all_reduce(flat, self.ranks)
        for grad, part in zip(grads, flat.split([g.numel() for g in grads]), strict=True):
            grad.copy_(part.view_as(grad))

    def _broadcast_buffers(self) -> None:
        """``parallel=columns``: what a model updates itself from its batches (MDR-CHCA's thresholds) taken from
        rank 0 after every step, as DDP does before every step with ``parallel=batch``."""
        for buffer in self._synced_buffers:
            broadcast(buffer, self.ranks)

    # -- state ------------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """The training state; with ``parallel=columns`` every rank must call it (the tables and their
        optimiser moments are gathered by columns), and it holds whole tables, as one process's does."""
        return {
            "config": self.config.to_dict(),
            "model": self.model.state_dict(),
            "optimizer": self._optimizer_state(),
            "sampler": self.sampler.state_dict(),
            "rng": rng_state(),
            "epoch": self.epoch,
            "best_epoch": self.best_epoch,
            "best_score": self.best_score,
            "best_valid": self.best_valid,
            "bad_evaluations": self.bad_evaluations,
            "history": self.history,
            "dataset": {"name": self.dataset.name, "n_users": self.dataset.n_users, "n_items": self.dataset.n_items},
        }

    def load_state(self, state: dict[str, Any], source: Path | str = "checkpoint") -> None:
        """Restore a state written by :meth:`state` (``load_checkpoint(..., required=STATE_KEYS)`` has checked
        its keys); a state that does not fit is one :class:`CheckpointError` line naming ``source``."""
        load_model_state(self.model, state, source)
        try:
            self._load_training_state(state)
        except (KeyError, ValueError, TypeError, RuntimeError, IndexError) as exc:
            raise CheckpointError(
                f"{source}: its training state does not load ({exc.__class__.__name__}); start a new run"
            ) from None

    def _optimizer_state(self) -> dict[str, Any]:
        """The optimiser's state dict, its per-element moments of split tables gathered to whole tables."""
        state = self.optimizer.state_dict()
        if self.split_columns:  # new dicts: state_dict() shares the live ones
            gather = self.model.column_share.collectives.gather
            state["state"] = {
                index: {k: gather(v) if self._is_split_moment(index, v) else v for k, v in moments.items()}
                for index, moments in state["state"].items()
            }
        return state

    def _is_split_moment(self, index: int, value: Any) -> bool:
        """Whether an optimiser state entry is a per-element moment of a table split by columns."""
        return int(index) in self._split_indices and torch.is_tensor(value) and value.dim() == 2

    def _load_training_state(self, state: dict[str, Any]) -> None:
        if self.split_columns:
            share = self.model.column_share
            for index, moments in state["optimizer"]["state"].items():
                for key, value in moments.items():
                    if self._is_split_moment(index, value):
                        moments[key] = share.of(value)
        self.optimizer.load_state_dict(state["optimizer"])
        self.sampler.load_state_dict(state["sampler"])
        set_rng_state(state["rng"])
        self.epoch = state["epoch"]
        self.best_epoch = state["best_epoch"]
        self.best_score = state["best_score"]
        self.best_valid = state["best_valid"]
        self.bad_evaluations = state["bad_evaluations"]
        self.history = list(state["history"])

    def resume(self) -> None:
        """Continue from ``run_dir/last.pt``."""
        if self.run_dir is None:
            raise MdrchcaError("resume needs the run folder (run_dir) whose last.pt to continue from")
        path = self.run_dir / LAST_CHECKPOINT  # a missing or unreadable one is load_checkpoint's one-line error
        self.load_state(load_checkpoint(path, self.device, required=STATE_KEYS), path)
        log.info("resumed from %s at epoch %d", path, self.epoch)

    # -- training ---------------------------------------------------------------------------------
    def learning_rate(self, epoch: int) -> float:
        """The scheduled learning rate of ``epoch`` (1-based), a pure function of the epoch so a resumed run
        follows the same schedule."""
        tc = self.config.train
        return tc.learning_rate * tc.lr_decay ** ((epoch - 1) / max(1, tc.lr_decay_epochs))

    def train_epoch(self) -> float:
        self.model.train()
        for group in self.optimizer.param_groups:
            group["lr"] = self.learning_rate(self.epoch)
        self.model.on_epoch_start(self.epoch)
        total, count = 0.0, 0
        batches = self.sampler.epoch(self.config.train.batch_size)
        n_batches = self.sampler.n_batches(self.config.train.batch_size)
        for users, pos, neg in tqdm(
            batches, total=n_batches, desc=f"epoch {self.epoch}", leave=False, disable=not self.progress
        ):
            total += self.step(Batch(users, pos, neg)) * len(users)
            count += len(users)
        return total / max(1, count)

    def step(self, batch: Batch) -> float:
        """One optimiser step on ``batch``; returns its mean loss.

        On several processes every rank is given the same global batch and steps on its share, its loss scaled
        by ``share * world_size / batch`` so that DDP's mean of the ranks' gradients is the gradient of the whole
        batch's mean loss (see :mod:`mdrchca.training.distributed`); the loss returned is the whole batch's. A
        rank with no share (a last batch smaller than the world) still takes part in the reduction, with weight 0.
        """
        size = len(batch.users)
        part = self.ranks.share(size) if not self.split_columns else slice(0, size)  # columns: the whole batch
        share = part.stop - part.start
        mine = Batch(*(t[part] for t in batch)) if 0 < share < size else batch
        loss = self._step_module(mine.to(self.device))
        batch_loss = loss.item() if self.split_columns else self._whole_batch_loss(loss.detach(), share, size)
        if not math.isfinite(batch_loss):
            raise MdrchcaError(
                f"loss became {batch_loss} at epoch {self.epoch}; "
                "lower learning_rate or check the features for extreme values"
            )
        weight = 1 if self.split_columns else share * self.ranks.world_size / size
        self.optimizer.zero_grad(set_to_none=True)
        (loss if weight == 1 else loss * weight).backward()
        if self.split_columns:
            self._sum_shared_gradients()
        self.optimizer.step()
        self.model.after_step()
        if self.split_columns:
            self._broadcast_buffers()
        return batch_loss

    def _whole_batch_loss(self, loss: torch.Tensor, share: int, size: int) -> float:
        """The batch's mean loss from this rank's ``loss`` on its ``share``: NaN if any rank's is not finite, so
        every rank stops alike."""
        if not self.ranks.distributed:
            return loss.item()
        not_finite = torch.isfinite(loss).logical_not().to(loss.dtype)
        summed = all_reduce(torch.stack([loss * share, not_finite]), self.ranks)
        return math.nan if summed[1] > 0 else float(summed[0]) / size

    def evaluate(self, split: str, per_user: bool = False) -> dict:
        """The evaluator's metrics of ``split``; on several processes each ranks its share of the users."""
        if not self.ranks.distributed:
            return self.evaluator.evaluate(self.model, split, per_user=per_user)
        share = (self.ranks.rank, self.ranks.world_size)
        return self.evaluator.evaluate(self.model, split, per_user=per_user, gather=self._gather_rows, share=share)

    def _gather_rows(self, rows: torch.Tensor, total: int) -> torch.Tensor:
        """Every rank's strided rows ``rank, rank + N, ...`` in one-process order, on every rank (what the
        evaluator and a model's split passes without gradients gather with)."""
        return gather_strided_rows(rows.to(self.device), total, self.ranks)

    def fit(self) -> TrainResult:
        tc = self.config.train
        while self.epoch < tc.epochs and self.bad_evaluations < tc.patience and not self._out_of_time():
            self.epoch += 1
            t0 = time.perf_counter()
            loss = self.train_epoch()
            train_seconds = self._slowest(time.perf_counter() - t0)
            row: dict[str, float] = {"epoch": self.epoch, "loss": loss, "train_seconds": train_seconds}
            if self.epoch % tc.eval_every == 0 or self.epoch == tc.epochs:
                t1 = time.perf_counter()
                valid = self.evaluate("valid")
                row["eval_seconds"] = self._slowest(time.perf_counter() - t1)
                row.update({f"valid_{k}": v for k, v in valid.items()})
                score = valid[tc.valid_metric]
                if score > self.best_score:
                    self.best_score, self.best_epoch, self.best_valid = score, self.epoch, valid
                    self.bad_evaluations = 0
                    if self.run_dir is not None:
                        self._save(BEST_CHECKPOINT)
                    else:
                        self._best_model_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
                else:
                    self.bad_evaluations += 1
                if self.on_evaluation is not None:
                    self.on_evaluation(self.epoch, score)
            # after validation, whose pass over every item a model's diagnostics may reuse (MDR-CHCA's staleness)
            row.update(self.model.epoch_log())
            self.history.append(row)
            self._log_epoch(row)
            self._save(LAST_CHECKPOINT)
        return self._finish(self._spent_seconds())

    def close(self) -> None:
        """Once the training is over on every rank: let go of what holds the process group (the DDP wrapper)
        and leave the group this trainer joined (:func:`~mdrchca.training.distributed.leave_process_group`).
        Nothing on one process. On several, the trainer and its model (whose scoring may gather over the ranks)
        are done: open the run folder with ``load_run`` to use the model.

        In that order: a group destroyed while DDP still holds it is torn down again when DDP is freed, and that
        can hang in gloo's thread join (2 of 40 two-rank LightGCN trainings: docs/results/close-order-s27/)."""
        if not self.ranks.distributed:
            return
        self._step_module = _BatchLoss(self.model)
        leave_process_group()

    def _save(self, name: str) -> None:
        """Rank 0 writes ``run_dir/name``; with ``parallel=columns`` every rank gathers the state with it."""
        if self.writes or (self.split_columns and self.run_dir is not None):
            state = self.state()
            if self.writes:
                save_checkpoint(state, self.run_dir / name)

    def _slowest(self, seconds: float) -> float:
        """The slowest rank's time: every rank then logs, and stops on ``max_seconds``, alike."""
        if not self.ranks.distributed:
            return seconds
        return float(all_reduce(torch.tensor([seconds], device=self.device), self.ranks, op="max")[0])

    def _spent_seconds(self) -> float:
        """Training and evaluation time of every epoch so far (earlier sessions of a resumed run included)."""
        return sum(h["train_seconds"] + h.get("eval_seconds", 0.0) for h in self.history)

    def _out_of_time(self) -> bool:
        limit = self.config.train.max_seconds
        if limit > 0 and self._spent_seconds() >= limit:
            log.info("time budget of %.0f s spent after epoch %d", limit, self.epoch)
            return True
        return False

    def _finish(self, seconds: float) -> TrainResult:
        if self.best_epoch == 0:
            raise MdrchcaError("training ended before any validation; raise epochs or lower eval_every")
        if self.run_dir is not None:
            barrier(self.ranks)  # rank 0 has written best.pt
            path = self.run_dir / BEST_CHECKPOINT
            load_model_state(self.model, load_checkpoint(path, self.device), path)
        elif self._best_model_state is not None:
            self.model.load_state_dict(self._best_model_state)
        if not self.evaluate_test:
            log.info("best epoch %d: valid %s = %.4f", self.best_epoch, self.config.train.valid_metric, self.best_score)
            return TrainResult(self.best_epoch, self.epoch, seconds, self.best_valid, {}, self.history)
        test = self.evaluate("test", per_user=True)
        users, per_user = test.pop("_users"), test.pop("_per_user")
        log.info(
            "best epoch %d: valid %s = %.4f, test %s = %.4f",
            self.best_epoch,
            self.config.train.valid_metric,
            self.best_score,
            self.config.train.valid_metric,
            test[self.config.train.valid_metric],
        )
        result = TrainResult(self.best_epoch, self.epoch, seconds, self.best_valid, test, self.history)
        if self.writes:
            frame = pd.DataFrame({"userID": users, **per_user})
            write_text(self.run_dir / PER_USER_FILE, frame.to_csv(index=False, float_format="%.6g"))
            write_text(
                self.run_dir / METRICS_FILE,
                json.dumps(result.to_json(self.config.model, self.dataset.name, self.dataset.split_mode), indent=2),
            )
        return result

    def _log_epoch(self, row: dict[str, float]) -> None:
        if not self.ranks.is_main:
            return
        metric = self.config.train.valid_metric
        shown = f" valid {metric} {row[f'valid_{metric}']:.4f}" if f"valid_{metric}" in row else ""
        log.info(
            "epoch %d loss %.4f%s (best %.4f @ %d) %.1fs",
            row["epoch"],
            row["loss"],
            shown,
            self.best_score if self.best_epoch else float("nan"),
            self.best_epoch,
            row["train_seconds"],
        )
        if self.writes:
            columns = sorted({k for r in self.history for k in r}, key=lambda k: (k != "epoch", k != "loss", k))
            buffer = io.StringIO()
            writer = csv.DictWriter(buffer, fieldnames=columns)
            writer.writeheader()
            writer.writerows(self.history)
            write_text(self.run_dir / LOG_FILE, buffer.getvalue())


class _BatchLoss(torch.nn.Module):
    """A model's training loss as its ``forward``: the call DDP hooks its gradient reduction into."""

    def __init__(self, model: Recommender) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: Batch) -> torch.Tensor:
        return self.model.loss(batch)


def _buffers_from_rank_0(model: Recommender) -> list[str]:
    """The buffers a model updates itself from its batches (persistent, and not among its
    ``rank_local_buffers``): every rank takes rank 0's, before each step with ``parallel=batch`` (DDP) and after
    it with ``parallel=columns``. Constant inputs (graphs, feature stores: non-persistent) are never sent."""
    own = set(type(model).rank_local_buffers)
    names = [
        f"{prefix}.{name}".lstrip(".")
        for prefix, module in model.named_modules()
        for name in module._buffers
        if name not in module._non_persistent_buffers_set
    ]
    return [name for name in names if name not in own]


def _data_parallel(wrapped: _BatchLoss, device: torch.device) -> torch.nn.Module:
    """A model's loss under DistributedDataParallel. Every rank built the same model from the same seed, so
    only what a model updates itself from its batches (persistent buffers: MDR-CHCA's thresholds) is sent from
    rank 0 before each step; the constant inputs (graphs, feature stores, non-persistent buffers, some sparse)
    and the buffers a model keeps per rank (``rank_local_buffers``: MDR-CHCA's content cache) are never sent."""
    from torch.nn.parallel import DistributedDataParallel

    synced = set(_buffers_from_rank_0(wrapped.model))
    ignored = [f"model.{name}" for name, _ in wrapped.model.named_buffers() if name not in synced]
    DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(wrapped, ignored)
    device_ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(wrapped, device_ids=device_ids, find_unused_parameters=True)


def adam_kernel(kernel: str, device: torch.device) -> dict[str, bool]:
    """Adam's keyword for ``optimizer_kernel``: ``fused`` where torch has the fused kernel (CPU, CUDA), else
    ``foreach``; ``loop`` asks for neither."""
    if kernel == "fused" and torch.device(device).type in ("cpu", "cuda"):
        return {"fused": True}
    if kernel in ("fused", "foreach"):
        return {"foreach": True}
    return {"foreach": False}

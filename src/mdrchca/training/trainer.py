"""One trainer for every model: Adam, shuffled BPR batches, early stopping on validation."""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from mdrchca.config import Config
from mdrchca.data.dataset import RecDataset, write_atomic_text
from mdrchca.data.sampler import BPRSampler
from mdrchca.errors import MdrchcaError
from mdrchca.evaluation.evaluator import Evaluator
from mdrchca.models import Recommender, get_model_class
from mdrchca.models.base import Batch
from mdrchca.training.reproducibility import resolve_device, rng_state, save_atomic, set_rng_state, set_seed

log = logging.getLogger(__name__)

BEST = "best.pt"
LAST = "last.pt"


def build_model(config: Config, dataset: RecDataset) -> Recommender:
    """Instantiate the configured model on ``dataset``."""
    return get_model_class(config.model)(dataset, config.model_params)


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
    """

    def __init__(
        self, config: Config, dataset: RecDataset, run_dir: Path | str | None = None, progress: bool = True
    ) -> None:
        self.config = config
        self.dataset = dataset
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.progress = progress
        tc = config.train
        if tc.num_threads > 0:
            torch.set_num_threads(tc.num_threads)
        if tc.deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # read when cuBLAS starts
        # process-wide: set both ways, or one deterministic run would slow every later run in the process
        torch.use_deterministic_algorithms(tc.deterministic, warn_only=True)
        self.device = resolve_device(tc.device)
        set_seed(tc.seed)
        self.model = build_model(config, dataset).to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=tc.learning_rate, weight_decay=tc.weight_decay)
        self.sampler = BPRSampler(dataset.train, dataset.n_items, seed=tc.seed, negative_pool=dataset.negative_pool())
        self.evaluator = Evaluator(dataset, tc.topk, tc.eval_batch_size)
        metric_k = int(tc.valid_metric.split("@")[1]) if "@" in tc.valid_metric else -1
        if metric_k not in self.evaluator.topk or tc.valid_metric.split("@")[0] not in (
            "recall",
            "ndcg",
            "precision",
            "hit",
        ):
            raise MdrchcaError(
                f"valid_metric '{tc.valid_metric}' is not computed; "
                "use metric@K with metric in recall/ndcg/precision/hit "
                f"and K in topk {self.evaluator.topk}"
            )
        self.epoch = 0
        self.best_epoch = 0
        self.best_score = -math.inf
        self.best_valid: dict[str, float] = {}
        self.bad_evaluations = 0
        self.history: list[dict[str, float]] = []

    # -- state ------------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {
            "config": self.config.to_dict(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
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

    def load_state(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
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
        if self.run_dir is None or not (self.run_dir / LAST).is_file():
            raise MdrchcaError(f"{self.run_dir}: no {LAST} to resume from; start the run without --resume")
        self.load_state(torch.load(self.run_dir / LAST, map_location=self.device, weights_only=False))
        log.info("resumed from %s at epoch %d", self.run_dir / LAST, self.epoch)

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
            batch = Batch(users, pos, neg).to(self.device)
            loss = self.model.loss(batch)
            if not torch.isfinite(loss):
                raise MdrchcaError(
                    f"loss became {loss.item()} at epoch {self.epoch}; "
                    "lower learning_rate or check the features for extreme values"
                )
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.model.after_step()
            total += loss.item() * len(users)
            count += len(users)
        return total / max(1, count)

    def fit(self) -> TrainResult:
        tc = self.config.train
        while self.epoch < tc.epochs and self.bad_evaluations < tc.patience and not self._out_of_time():
            self.epoch += 1
            t0 = time.perf_counter()
            loss = self.train_epoch()
            train_seconds = time.perf_counter() - t0
            row: dict[str, float] = {"epoch": self.epoch, "loss": loss, "train_seconds": train_seconds}
            if self.epoch % tc.eval_every == 0 or self.epoch == tc.epochs:
                t1 = time.perf_counter()
                valid = self.evaluator.evaluate(self.model, "valid")
                row["eval_seconds"] = time.perf_counter() - t1
                row.update({f"valid_{k}": v for k, v in valid.items()})
                score = valid[tc.valid_metric]
                if score > self.best_score:
                    self.best_score, self.best_epoch, self.best_valid = score, self.epoch, valid
                    self.bad_evaluations = 0
                    if self.run_dir is not None:
                        save_atomic(self.state(), self.run_dir / BEST)
                else:
                    self.bad_evaluations += 1
            self.history.append(row)
            self._log_epoch(row)
            if self.run_dir is not None:
                save_atomic(self.state(), self.run_dir / LAST)
        return self._finish(self._spent_seconds())

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
            best = torch.load(self.run_dir / BEST, map_location=self.device, weights_only=False)
            self.model.load_state_dict(best["model"])
        elif self.best_epoch != self.epoch:
            log.warning("no run_dir: the model keeps its last state, test is measured at epoch %d", self.epoch)
        test = self.evaluator.evaluate(self.model, "test")
        log.info(
            "best epoch %d: valid %s = %.4f, test %s = %.4f",
            self.best_epoch,
            self.config.train.valid_metric,
            self.best_score,
            self.config.train.valid_metric,
            test[self.config.train.valid_metric],
        )
        result = TrainResult(self.best_epoch, self.epoch, seconds, self.best_valid, test, self.history)
        if self.run_dir is not None:
            write_atomic_text(
                self.run_dir / "metrics.json",
                json.dumps(result.to_json(self.config.model, self.dataset.name, self.dataset.split_mode), indent=2),
            )
        return result

    def _log_epoch(self, row: dict[str, float]) -> None:
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
        if self.run_dir is not None:
            columns = sorted({k for r in self.history for k in r}, key=lambda k: (k != "epoch", k != "loss", k))
            buffer = io.StringIO()
            writer = csv.DictWriter(buffer, fieldnames=columns)
            writer.writeheader()
            writer.writerows(self.history)
            write_atomic_text(self.run_dir / "log.csv", buffer.getvalue())

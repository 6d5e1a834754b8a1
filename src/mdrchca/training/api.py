"""The Python API over runs: :func:`train`, :func:`resume` and :func:`load_run`, each giving a :class:`Run`.

The ``mdrchca`` command is a thin layer over these::

    import mdrchca
    config = mdrchca.Config.load("lightgcn", overrides=["epochs=50"])
    run = mdrchca.train(config, out="runs/lightgcn")        # or out=None: nothing written
    run.metrics["test"]["recall@20"]
    run = mdrchca.load_run("runs/lightgcn")
    run.evaluate(); run.recommend([0, 1], k=10)
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from mdrchca.config import Config
from mdrchca.data.dataset import RecDataset, dataset_folder, load_dataset
from mdrchca.errors import DataError, MdrchcaError
from mdrchca.evaluation.evaluator import Evaluator, rank_items
from mdrchca.models import Recommender
from mdrchca.training.checkpoint import load_checkpoint, load_model_state
from mdrchca.training.distributed import environment_rank
from mdrchca.training.run_folder import (
    BEST_CHECKPOINT,
    METRICS_FILE,
    SPLIT_FILE,
    RunFolder,
    RunFolderError,
    dataset_fingerprint,
)
from mdrchca.training.trainer import Trainer, build_model

log = logging.getLogger(__name__)


@dataclass
class Run:
    """A trained model with its config, dataset and metrics; ``path`` is its run folder (``None`` when trained
    without one)."""

    config: Config
    dataset: RecDataset
    model: Recommender
    metrics: dict[str, Any]
    path: Path | None = None
    history: list[dict[str, float]] = field(default_factory=list)

    def evaluate(self, splits: tuple[str, ...] = ("valid", "test")) -> dict[str, dict[str, float]]:
        """Full-ranking metrics of the model on each split (MMRec's protocol)."""
        evaluator = Evaluator(self.dataset, self.config.train.topk, self.config.train.eval_batch_size)
        return {split: evaluator.evaluate(self.model, split) for split in splits}

    def recommend(self, users: list[int] | np.ndarray | None = None, k: int = 20) -> pd.DataFrame:
        """Top-``k`` items per user (``None``: every user with training interactions), never an item the user
        has interacted with in any split. With fewer than ``k`` such items a user gets what there is (the
        frame's ``attrs["short_users"]`` counts those users).

        Columns: ``userID``, ``rank`` (1-based), ``itemID``, ``score``.
        """
        if k < 1:
            raise MdrchcaError(f"k must be at least 1, got {k}")
        dataset = self.dataset
        trained = np.diff(dataset.matrix("train").indptr) > 0
        if users is None:
            chosen = np.flatnonzero(trained)
        else:
            chosen = np.asarray(users, dtype=np.int64).reshape(-1)
            bad = chosen[(chosen < 0) | (chosen >= dataset.n_users)]
            if len(bad) == 0:
                bad = chosen[~trained[chosen]]
            if len(bad):
                raise MdrchcaError(
                    f"unknown user {int(bad[0])}: not a userID with training interactions in {dataset.name} "
                    f"(0..{dataset.n_users - 1})"
                )
        seen = (dataset.matrix("train") + dataset.matrix("valid") + dataset.matrix("test")).tocsr()
        width = min(k, dataset.n_items)
        items, scores = rank_items(self.model, chosen, width, seen, self.config.train.eval_batch_size)
        keep = torch.isfinite(scores).numpy()  # seen items score -inf; a short user's last slots are those
        rows = np.repeat(chosen, items.shape[1]).reshape(items.shape)
        frame = pd.DataFrame(
            {
                "userID": rows[keep],
                "rank": np.cumsum(keep, axis=1)[keep],
                "itemID": items.numpy()[keep],
                "score": scores.numpy()[keep],
            }
        )
        frame.attrs["short_users"] = int((keep.sum(1) < k).sum())
        return frame


def train(
    config: Config,
    out: str | Path | None = None,
    progress: bool = False,
    command: str | None = None,
    on_evaluation: Callable[[int, float], None] | None = None,
    evaluate_test: bool = True,
) -> Run:
    """Train ``config`` with early stopping; test is measured at the best validation epoch.
    ``on_evaluation(epoch, valid score)`` follows each validation (a tuner reports and prunes there);
    ``evaluate_test=False`` (only without ``out``) never ranks the test split, for selection on validation.

    With ``out`` the run folder is checked first (missing or empty, not the dataset folder), then locked for
    the whole training, and receives config, split, provenance, log, checkpoints and metrics. Without it
    nothing is written.

    Started by ``torchrun`` on several processes, each trains its share of every batch
    (:mod:`mdrchca.training.distributed`) and rank 0 alone checks, locks and writes the run folder.
    """
    config.validate()
    if out is not None and not evaluate_test:
        raise MdrchcaError("a run folder records test metrics; evaluate_test=False needs out=None")
    folder = RunFolder(out) if out is not None else None
    data_folder = _dataset_folder(config)
    main = environment_rank() == 0
    if folder is not None and main:
        folder.check_new(data_folder)
    dataset = load_dataset(config.data.data_path, config.data)
    if config.data.data_path is None and dataset.path is not None:
        config.data.data_path = str(dataset.path.resolve())
    _log_dataset(config, dataset)
    # built before anything is written, so an option it refuses leaves no half-made run folder
    trainer = Trainer(
        config,
        dataset,
        folder.path if folder else None,
        progress=progress,
        on_evaluation=on_evaluation,
        evaluate_test=evaluate_test,
    )
    if folder is None or not main:
        result = trainer.fit()
        trainer.close()
        metrics = result.to_json(config.model, dataset.name, dataset.split_mode)
        return Run(config, dataset, trainer.model.eval(), metrics, folder.path if folder else None, result.history)
    with folder.locked():
        folder.check_new(data_folder)  # again, under the lock: another process may have started meanwhile
        dataset.save_split(folder.file(SPLIT_FILE))
        config.data.split_file = str(folder.file(SPLIT_FILE).resolve())
        folder.write_config(config)
        folder.write_provenance(config, dataset.path, command=command)
        folder.record_files()
        result = trainer.fit()
    trainer.close()
    metrics = result.to_json(config.model, dataset.name, dataset.split_mode)
    return Run(config, dataset, trainer.model.eval(), metrics, folder.path, result.history)


def resume(
    out: str | Path,
    overrides: list[str] | tuple[str, ...] = (),
    model: str | None = None,
    data: str | Path | None = None,
    progress: bool = False,
    command: str | None = None,
) -> Run:
    """Continue the run in ``out`` from its last checkpoint. ``model`` and ``data``, if given, must be the run's
    own; ``overrides`` may change only :data:`~mdrchca.training.run_folder.RESUMABLE_OPTIONS`."""
    folder = RunFolder(out)
    folder.check_resumable()
    folder.check_resume_overrides(overrides)
    main = environment_rank() == 0
    # on several processes rank 0 alone holds the lock and writes; the others read the same checkpoint
    with folder.locked() if main else contextlib.nullcontext():
        config = folder.read_config(overrides)
        if model is not None and model.lower() != config.model:
            raise RunFolderError(
                f"{folder.path}: --model {model} disagrees with the run's model {config.model}; drop --model to "
                "resume, or start a new run in another folder"
            )
        if data is not None and (config.data.data_path is None or not _same_dataset(data, config.data.data_path)):
            raise RunFolderError(
                f"{folder.path}: --data {data} is not the run's dataset ({config.data.data_path}); drop --data to "
                "resume, or start a new run in another folder"
            )
        dataset = _load_run_dataset(folder, config, None)
        _log_dataset(config, dataset)
        trainer = Trainer(config, dataset, folder.path, progress=progress)
        trainer.resume()
        if main:
            if overrides:
                folder.write_config(config)
            folder.write_provenance(config, dataset.path, resumed=True, command=command)
            folder.record_files()  # an override of a resumable option rewrote config.yaml
        result = trainer.fit()
    trainer.close()
    metrics = result.to_json(config.model, dataset.name, dataset.split_mode)
    return Run(config, dataset, trainer.model.eval(), metrics, folder.path, result.history)


def load_run(path: str | Path, data: str | Path | None = None, device: str = "cpu") -> Run:
    """Open a trained run: its config, its exact split, the model at its best validation epoch.

    ``data`` points at the dataset when it has moved since training (the run records its fingerprint and warns
    when the files differ). Nothing in the folder can run code: the config is read as plain YAML, checkpoints
    with ``weights_only=True``.
    """
    folder = RunFolder(path)
    folder.check_finished()
    config = folder.read_config()
    config.train.device = device
    dataset = _load_run_dataset(folder, config, data)
    model = build_model(config, dataset)
    checkpoint = folder.file(BEST_CHECKPOINT)
    load_model_state(model, load_checkpoint(checkpoint, "cpu"), checkpoint)
    model = model.to(torch.device(device)).eval()
    metrics: dict[str, Any] = {}
    if folder.file(METRICS_FILE).is_file():
        try:
            metrics = folder.read_metrics()
        except RunFolderError as exc:
            log.warning("%s; the run's metrics are left out", exc)
    return Run(config, dataset, model, metrics, folder.path)


def _same_dataset(given: str | Path, recorded: str | Path) -> bool:
    """Whether ``given`` names the recorded dataset: the same folder, or a file in it, either way round."""
    a, b = Path(given).resolve(), Path(recorded).resolve()
    folder_a, folder_b = dataset_folder(a), dataset_folder(b)
    if folder_a != folder_b:
        return False
    return a.is_dir() or b.is_dir() or a == b


def _dataset_folder(config: Config) -> Path | None:
    if config.data.data_path is None:
        return None
    return dataset_folder(config.data.data_path)


def _load_run_dataset(folder: RunFolder, config: Config, data: str | Path | None) -> RecDataset:
    if data is not None:
        config.data.data_path = str(Path(data).resolve())
    where = config.data.data_path
    if where is not None and not Path(where).exists():
        raise DataError(
            f"{where}: the run's dataset is not there any more; pass its new location with --data (data= in Python)"
        )
    dataset = load_dataset(where, config.data)
    recorded = folder.provenance().get("data", {}).get("fingerprint")
    if recorded and dataset.path is not None:
        now = dataset_fingerprint(dataset.path)
        changed = sorted(name for name in set(recorded) | set(now) if recorded.get(name) != now.get(name))
        if changed:
            log.warning(
                "%s: the dataset's files differ from the ones this run was trained on (%s); results may differ",
                dataset.path,
                ", ".join(changed[:4]),
            )
    return dataset


def _log_dataset(config: Config, dataset: RecDataset) -> None:
    summary = {k: round(v, 6) if isinstance(v, float) else v for k, v in dataset.summary().items()}
    log.info("%s on %s: %s", config.model, dataset.name, json.dumps(summary))

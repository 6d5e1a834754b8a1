"""The run folder: the one owner of its file names, of who may write it, and of what it records.

A run folder holds::

    config.yaml   every option, resolved (paths inside the run are relative to it)
    split.inter   the exact split trained on
    run.json      provenance: command, code and library versions, machine, seeds, dataset fingerprint
    log.csv       one row per epoch
    best.pt       the best validation state (tensors and plain types only)
    last.pt       the state after the latest epoch, for an exact resume
    metrics.json  written last: the run is finished
    .lock         the OS file lock a training holds for its lifetime

Rules (each refusal is one line naming the folder and the fix, given before anything is written): a new
training goes into a missing or empty folder only, never into the dataset folder; a folder with a run in it
is continued only with ``--resume``, which refuses a model or dataset other than the run's and options
other than the ones that may change between sessions (:data:`RESUMABLE_OPTIONS`); two trainings never
write one folder at the same time.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import platform
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import filelock
import pandas as pd
import yaml

from mdrchca.config import Config, parse_override
from mdrchca.data.dataset import is_dataset_folder
from mdrchca.errors import MdrchcaError
from mdrchca.io import write_json, write_text
from mdrchca.version import __version__

CONFIG_FILE = "config.yaml"
SPLIT_FILE = "split.inter"
PROVENANCE_FILE = "run.json"
LOG_FILE = "log.csv"
BEST_CHECKPOINT = "best.pt"
LAST_CHECKPOINT = "last.pt"
METRICS_FILE = "metrics.json"
PER_USER_FILE = "test_per_user.csv"
METRICS_KEYS = ("model", "dataset", "best_epoch", "epochs", "valid", "test")
"""What every reader of ``metrics.json`` may rely on (:meth:`RunFolder.read_metrics` checks it)."""
"""Each test user's metrics at the best epoch (paired significance tests across models)."""
LOCK_FILE = ".lock"

RESUMABLE_OPTIONS = frozenset(
    {"epochs", "patience", "max_seconds", "num_threads", "device", "eval_batch_size", "parallel"}
)
"""Options ``--resume`` may change: how long and where training goes on, never what is trained."""


class RunFolderError(MdrchcaError):
    """A run folder used in a way that would clobber, mix or misread runs."""


class RunFolder:
    """One run folder on disk (see the module docstring for its files and rules)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    def file(self, name: str) -> Path:
        return self.path / name

    @property
    def is_run(self) -> bool:
        """A run has been started here (its config is written)."""
        return self.file(CONFIG_FILE).is_file()

    @property
    def is_finished(self) -> bool:
        return self.file(METRICS_FILE).is_file() and self.file(BEST_CHECKPOINT).is_file()

    def _entries(self) -> list[str]:
        return sorted(p.name for p in self.path.iterdir() if p.name != LOCK_FILE)

    # -- checks -----------------------------------------------------------------------------------
    def check_new(self, data_folder: Path | None) -> None:
        """Refuse a folder a new training must not write into."""
        path = self.path
        if path.exists() and not path.is_dir():
            raise RunFolderError(f"{path}: --out is a file, not a folder; choose a new folder for the run")
        if data_folder is not None and path.exists() and path.resolve() == data_folder.resolve():
            raise RunFolderError(f"{path}: --out is the dataset folder; choose another folder for the run")
        guard_output(path, "the run")  # not inside another run, nor inside any dataset's folder
        if not path.is_dir():
            return
        if self.is_finished:
            raise RunFolderError(
                f"{path}: holds a finished run; continue it with --resume, or choose another --out for a new run"
            )
        if self.is_run and not self.file(LAST_CHECKPOINT).is_file():
            raise RunFolderError(
                f"{path}: holds a run that stopped before finishing its first epoch; remove the folder "
                "(rm -r) to start it again, or choose another --out"
            )
        if self.is_run:
            raise RunFolderError(f"{path}: holds an unfinished run; continue it with --resume, or choose another --out")
        entries = self._entries()
        if entries:
            shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
            raise RunFolderError(f"{path}: not empty and not a run ({shown}); choose a new or empty folder for --out")

    def check_resumable(self) -> None:
        if not self.path.is_dir() or not self.is_run:
            raise RunFolderError(f"{self.path}: no run to resume (no {CONFIG_FILE}); start it without --resume")
        if not self.file(LAST_CHECKPOINT).is_file():
            raise RunFolderError(
                f"{self.path}: no {LAST_CHECKPOINT} to resume from (it stopped before finishing its first epoch); "
                "remove the folder (rm -r) and start the run again without --resume"
            )

    def check_finished(self) -> None:
        if not self.path.is_dir() or not self.is_run or not self.file(BEST_CHECKPOINT).is_file():
            raise RunFolderError(
                f"{self.path}: not a trained run (needs {CONFIG_FILE} and {BEST_CHECKPOINT}); "
                f"train one with mdrchca train --out {self.path}"
            )

    # -- the lock ---------------------------------------------------------------------------------
    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the OS file lock of this folder (created if missing) or refuse at once."""
        self.path.mkdir(parents=True, exist_ok=True)
        lock_path = self.file(LOCK_FILE)
        if lock_path.is_symlink() or (lock_path.exists() and not lock_path.is_file()):
            raise RunFolderError(
                f"{lock_path}: not a plain file (a link or a folder); remove it, mdrchca makes its own lock file"
            )
        lock = filelock.FileLock(str(lock_path), timeout=0)
        try:
            lock.acquire()
        except filelock.Timeout:
            raise RunFolderError(
                f"{self.path}: another process is training into this run folder; wait for it to finish or choose "
                "another --out"
            ) from None
        except OSError as exc:
            raise RunFolderError(f"{lock_path}: cannot be locked ({exc.strerror}); check the folder") from None
        try:
            # temporaries of an atomic write that a killed process left behind; no one else writes here now
            for litter in self.path.glob(".*.tmp"):
                litter.unlink(missing_ok=True)
            yield
        finally:
            lock.release()

    # -- config -----------------------------------------------------------------------------------
    def read_config(self, overrides: list[str] | tuple[str, ...] = ()) -> Config:
        """The run's config, with its relative paths resolved against the folder, once :meth:`check_files` has
        found its config and split as the run wrote them."""
        self.check_files()
        config = Config.load(config_file=self.file(CONFIG_FILE), overrides=overrides)
        if config.data.split_file is not None and not Path(config.data.split_file).is_absolute():
            config.data.split_file = str(self.path / config.data.split_file)
        return config

    def check_resume_overrides(self, overrides: list[str] | tuple[str, ...]) -> None:
        for item in overrides:
            key = parse_override(item)[0].split(".")[-1]
            if key not in RESUMABLE_OPTIONS:
                raise RunFolderError(
                    f"--set {key}: cannot change on --resume (it would mix two trainings in one run); "
                    f"only {', '.join(sorted(RESUMABLE_OPTIONS))} may, or start a new run"
                )

    def write_config(self, config: Config) -> None:
        """``config.yaml`` with the split file named relative to the folder, so the run can be moved."""
        raw = config.to_dict()
        if (
            raw["data"].get("split_file")
            and Path(raw["data"]["split_file"]).resolve() == self.file(SPLIT_FILE).resolve()
        ):
            raw["data"]["split_file"] = SPLIT_FILE
        write_text(self.file(CONFIG_FILE), yaml.safe_dump(raw, sort_keys=False))

    # -- provenance -------------------------------------------------------------------------------
    def write_provenance(
        self, config: Config, data_folder: Path | None, resumed: bool = False, command: str | None = None
    ) -> None:
        """Record (or, on resume, extend) ``run.json``: what made this run and on what."""
        session = {"command": command or _command_line(), "started": _now(), "machine": machine_facts(config)}
        if resumed and self.file(PROVENANCE_FILE).is_file():
            record = _read_json(self.file(PROVENANCE_FILE))
            record.setdefault("resumed", []).append(session)
        else:
            record = {
                **session,
                "code": code_version(),
                "libraries": library_versions(),
                "seeds": {"seed": config.train.seed, "split_seed": config.data.split_seed},
                "data": {
                    "path": str(data_folder) if data_folder else None,
                    "fingerprint": dataset_fingerprint(data_folder) if data_folder else {},
                },
            }
        write_json(self.file(PROVENANCE_FILE), record)

    def provenance(self) -> dict[str, Any]:
        path = self.file(PROVENANCE_FILE)
        return _read_json(path) if path.is_file() else {}

    # -- what training wrote: the one reader of each file ------------------------------------------
    def read_metrics(self) -> dict[str, Any]:
        """``metrics.json``, checked: JSON with the keys every reader needs (``model, dataset, best_epoch,
        epochs, valid, test``); anything else is one line naming the file."""
        path = self.file(METRICS_FILE)
        if not path.is_file():
            raise RunFolderError(f"{path}: missing; is {self.path} a finished run of mdrchca train?")
        try:
            metrics = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise RunFolderError(f"{path}: not a metrics file (not JSON); train the run again") from None
        missing = [key for key in METRICS_KEYS if not isinstance(metrics, dict) or key not in metrics]
        if missing or not all(isinstance(metrics[k], dict) for k in ("valid", "test")):
            raise RunFolderError(f"{path}: lacks {', '.join(missing) or 'valid / test tables'}; train the run again")
        return metrics

    def read_log(self) -> pd.DataFrame:
        """``log.csv``, one row per epoch (loss, seconds, validation metrics, the model's diagnostics)."""
        return self._read_csv(LOG_FILE, "epoch")

    def read_per_user(self) -> pd.DataFrame:
        """``test_per_user.csv``: every test user's metrics at the best epoch, indexed by ``userID``."""
        return self._read_csv(PER_USER_FILE, "userID").set_index("userID")

    def _read_csv(self, name: str, needed: str) -> pd.DataFrame:
        path = self.file(name)
        if not path.is_file():
            raise RunFolderError(f"{path}: missing; is {self.path} a finished run of mdrchca train?")
        try:
            frame = pd.read_csv(path)
        except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            raise RunFolderError(f"{path}: not a CSV file ({exc.__class__.__name__}); train the run again") from None
        if needed not in frame.columns:
            raise RunFolderError(f"{path}: no {needed} column; train the run again")
        return frame

    # -- the files that define the run ------------------------------------------------------------
    def record_files(self) -> None:
        """Record in ``run.json`` the SHA-256 of :data:`RECORDED_FILES` as the run has just written them."""
        record = self.provenance()
        record["files"] = {name: _sha256(self.file(name)) for name in RECORDED_FILES if self.file(name).is_file()}
        write_json(self.file(PROVENANCE_FILE), record)

    def check_files(self) -> None:
        """Refuse, with one line, a run whose config or split differs from what it recorded: a resumed run would
        train on an edited learning rate, an evaluation would report a model other than the one trained, and an
        edited split would move items between training and test. Runs recorded before these hashes pass."""
        recorded = self.provenance().get("files", {})
        for name, digest in recorded.items():
            path = self.file(name)
            if not path.is_file():
                raise RunFolderError(f"{path}: missing, but the run recorded it; restore it, or train a new run")
            if _sha256(path) != digest:
                raise RunFolderError(
                    f"{path}: changed since the run wrote it (SHA-256 differs from run.json); restore the file, "
                    "or train a new run with the settings you want"
                )


def guard_output(path: str | Path, what: str, itself: bool = False) -> None:
    """Refuse, with one line and before anything is written, an output that would land in a run folder or in
    a dataset folder (its checkpoint, its split, its interactions replaced, or a stranger's file added among
    them). ``itself``: ``path`` is a folder the command writes into, checked too, not only its parents."""
    target = Path(path).absolute()
    start = target if itself else target.parent
    for folder in [start, *start.parents]:
        if not folder.is_dir():
            continue
        if is_run_folder(folder):
            raise RunFolderError(f"{path}: inside the run folder {folder}; write {what} outside it")
        if is_dataset_folder(folder):
            raise RunFolderError(f"{path}: inside the dataset folder {folder}; write {what} outside it")


def is_run_folder(folder: Path) -> bool:
    """Whether ``folder`` holds a run (its config or its provenance) of ``mdrchca train``."""
    return (folder / CONFIG_FILE).is_file() or (folder / PROVENANCE_FILE).is_file()


RECORDED_FILES = (CONFIG_FILE, SPLIT_FILE)
"""A run's files whose hashes ``run.json`` keeps (:meth:`RunFolder.check_files`)."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def dataset_fingerprint(folder: Path) -> dict[str, str]:
    """Per input file of a dataset folder (interactions, item vectors, feature stores): its size and a hash of
    its first and last MiB, cheap on large files yet changed by any re-extraction."""
    files = sorted([*folder.glob("*.inter"), *folder.glob("*_feat.npy"), *folder.glob("features/*/*.npy")])
    files += sorted(folder.glob("features/*/manifest.json"))
    out = {}
    for path in files:
        size = path.stat().st_size
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            digest.update(handle.read(1 << 20))
            if size > 2 << 20:
                handle.seek(-(1 << 20), os.SEEK_END)
                digest.update(handle.read())
        out[str(path.relative_to(folder))] = f"{size}:{digest.hexdigest()[:16]}"
    return out


def code_version() -> dict[str, Any]:
    """The package version and, when it runs from a git checkout, the commit and whether it had changes."""
    out: dict[str, Any] = {"mdrchca": __version__}
    source = Path(__file__).resolve().parents[1]  # the package folder
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=source, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=source,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        out.update(git_commit=commit, git_dirty=bool(dirty))
    return out


def library_versions() -> dict[str, str]:
    import importlib.metadata as metadata

    out = {"python": platform.python_version()}
    for name in ("torch", "numpy", "scipy", "pandas", "transformers", "faiss-cpu"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[name] = metadata.version(name)
    return out


def machine_facts(config: Config | None = None) -> dict[str, Any]:
    import torch

    facts: dict[str, Any] = {
        "host": platform.node(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }
    if torch.cuda.is_available():
        facts["gpu"] = torch.cuda.get_device_name(0)
    if config is not None:
        facts["device"] = config.train.device
    return facts


def _cpu_model() -> str:
    """The CPU's marketing name where the OS tells it (Linux), else the architecture."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.machine()


def _command_line() -> str:
    return shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv and sys.argv[0] else "python API"


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _read_json(path: Path) -> dict[str, Any]:
    import json

    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunFolderError(f"{path}: not readable JSON ({exc.__class__.__name__}); restore or remove it") from None
    if not isinstance(value, dict):
        raise RunFolderError(f"{path}: expected a JSON object; restore or remove it")
    return value

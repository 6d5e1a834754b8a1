"""A grid of runs, executed by worker processes that share one Optuna storage and one folder of runs.

Every experiment command (``compare``, ``sweep``, ``ablate``, ``robustness``) is a list of :class:`RunSpec`
(model, dataset, seed, overrides). Each spec has a stable :attr:`RunSpec.key` that names its run folder
(``<out>/runs/<key>``), so a finished run is reused by any later grid that contains it, never retrained.

The queue is Optuna's own: the grid is a study whose trials are enqueued one per run (``WAITING``); a worker
takes one by moving it to ``RUNNING`` through the storage, which succeeds for exactly one worker (what Optuna
itself does when it pops an enqueued trial), trains or resumes the run, and tells the study its validation
score. The storage is SQLite in ``<out>/grid.db`` by default, or any database URL (``postgresql://...``) for
workers on several machines that share ``<out>``. Each running trial sends a heartbeat; the trial of a
worker that died is failed once its heartbeat is older than the grace period and re-enqueued (Optuna's
``RetryHeartbeatStaleTrialCallback``), and the next worker resumes its run folder from the last checkpoint.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import multiprocessing
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
from tqdm import tqdm

from mdrchca.config import AT_LEAST_ONE, NON_NEGATIVE, Config, check_options
from mdrchca.data.dataset import dataset_folder, find_inter_file
from mdrchca.errors import ConfigError, MdrchcaError
from mdrchca.io import write_json
from mdrchca.training.run_folder import LAST_CHECKPOINT, RunFolder, dataset_fingerprint, guard_output

log = logging.getLogger(__name__)

RUNS_FOLDER = "runs"
LOGS_FOLDER = "logs"
GRID_FILE = "grid.json"
HEARTBEAT_SECONDS = 10
"""How often a running trial records that its worker is alive."""
GRACE_SECONDS = 60
"""A running trial whose last heartbeat is older than this is taken as dead and re-queued."""
SETTING_KEYS_IGNORED = ("num_threads", "device", "eval_batch_size", "data_path", "split_file", "optimizer_kernel")
"""Options that do not change what a run computes beyond rounding; a reused run may differ from its spec in these
only."""


class GridError(MdrchcaError):
    """A grid that cannot run as asked (its storage, its folder, a run in it)."""


@dataclass(frozen=True)
class RunSpec:
    """One run of a grid: ``model`` trained on ``data`` with ``seed`` and ``overrides`` (``key=value``).

    ``labels`` are what tables and figures group by (e.g. ``{"param": "k_r", "value": "5"}``); they are not
    part of the run's identity, so two grids that contain the same run share it.
    """

    model: str
    data: str | None
    seed: int
    overrides: tuple[str, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()

    @property
    def data_name(self) -> str:
        """The dataset folder's name (``bundled`` for the bundled catalogue)."""
        if not self.data:
            return "bundled"
        path = Path(self.data)
        return path.parent.name if path.suffix == ".inter" else path.name

    @property
    def variant(self) -> str:
        """A readable, file-safe name of the overrides (``default`` for none; hashed when long)."""
        if not self.overrides:
            return "default"
        text = ",".join(sorted(self.overrides))
        safe = re.sub(r"[^A-Za-z0-9_.=,+-]", "_", text)
        if len(safe) <= 60 and safe == text:
            return safe
        return f"cfg-{hashlib.sha1(text.encode()).hexdigest()[:10]}"

    @property
    def key(self) -> str:
        """The run's folder below ``<out>/runs``: dataset, model, variant and seed."""
        return f"{self.data_name}/{self.model}/{self.variant}/seed-{self.seed}"

    def config(self, threads: int = 0) -> Config:
        """The run's full config (``threads`` only sets ``num_threads``, which never changes a result)."""
        overrides = [*self.overrides, f"seed={self.seed}", f"num_threads={threads}"]
        if self.data:
            overrides.append(f"data_path={self.data}")
        return Config.load(self.model, overrides=overrides)

    def to_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "labels": dict(self.labels)}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> RunSpec:
        return cls(raw["model"], raw["data"], int(raw["seed"]), tuple(raw["overrides"]), tuple(raw["labels"].items()))


def check_specs(specs: Sequence[RunSpec]) -> None:
    """Every spec builds a valid config (so a typo fails before any worker starts) and keys are unique."""
    for data in {spec.data for spec in specs if spec.data}:
        find_inter_file(Path(data))  # a missing dataset is one line naming it, before any worker starts
    seen: dict[str, RunSpec] = {}
    for spec in specs:
        spec.config()
        other = seen.get(spec.key)
        if other is not None and other.overrides != spec.overrides:
            raise GridError(f"two runs share the folder {spec.key}; give their overrides distinct values")
        seen[spec.key] = spec


# -- the storage ----------------------------------------------------------------------------------------------
def storage_url(out: Path, storage: str | None) -> str:
    return storage or f"sqlite:///{(out / 'grid.db').resolve()}"


def open_storage(url: str, heartbeat: int = HEARTBEAT_SECONDS, grace: int = GRACE_SECONDS) -> Any:
    """Optuna's RDB storage at ``url`` with heartbeats and re-queueing of the trials of dead workers."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # heartbeats and fail_stale_trials are marked experimental since Optuna 2.9; the warning says nothing new
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    engine_kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    if url.startswith("sqlite:///"):
        _check_sqlite_file(Path(url.removeprefix("sqlite:///")))
    try:
        storage = optuna.storages.RDBStorage(
            url,
            engine_kwargs=engine_kwargs,
            heartbeat_interval=heartbeat,
            grace_period=grace,
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=3),
        )
    except Exception as exc:  # sqlalchemy raises many kinds; all mean the same thing to the user
        shown = _without_password(url)
        reason = str(exc).replace(url, shown).split("\n")[0]
        raise GridError(f"--storage {shown}: cannot open it ({exc.__class__.__name__}: {reason})") from None
    if url.startswith("sqlite"):
        _serialize_sqlite_transactions(storage.engine)
    return storage


def _check_sqlite_file(path: Path) -> None:
    """Refuse, leaving the file as it was, an existing SQLite file that Optuna cannot use as it is: not a
    database, or one written by another Optuna's schema. Optuna creates missing tables before it checks the
    schema's version, so the check opens a copy."""
    import optuna

    if not path.is_file() or path.stat().st_size == 0:
        return
    with tempfile.TemporaryDirectory(prefix="mdrchca-storage-check-") as tmp:
        copy = Path(tmp) / path.name
        shutil.copyfile(path, copy)
        try:
            optuna.storages.RDBStorage(f"sqlite:///{copy}").engine.dispose()
        except Exception as exc:  # sqlalchemy and optuna raise many kinds; all mean the same thing to the user
            reason = str(exc).replace(str(copy), str(path)).split("\n")[0]
            raise GridError(
                f"{path}: not a storage this Optuna can use ({exc.__class__.__name__}: {reason}); "
                "remove it or choose another --out"
            ) from None


def _without_password(url: str) -> str:
    """``url`` with its password shown as ``***`` (error lines and logs are read by others)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url.split("@")[-1] if "@" in url else url


def _serialize_sqlite_transactions(engine: Any) -> None:
    """Make every transaction on this SQLite engine take the write lock when it begins.

    Python's sqlite3 driver starts a transaction only at the first write, so two workers can both read a
    trial as WAITING and both mark it RUNNING: the same run taken twice (measured). ``BEGIN IMMEDIATE``
    (SQLAlchemy's documented recipe for the pysqlite driver) serialises the transactions instead, which makes
    Optuna's read-then-update of a trial's state atomic, as row locks make it on PostgreSQL.
    """
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _driver_leaves_transactions_to_us(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _take_the_write_lock(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    engine.dispose()  # connections opened before the listeners (table checks) are not reused


def grid_name(specs: Sequence[RunSpec]) -> str:
    """The study that queues this grid: named by its runs (each spec in full, with the files of its dataset),
    so the same grid on the same data run again continues, and any other grid, one on a dataset of the same
    folder name or on re-extracted files included, is queued afresh (its runs then check what they reuse)."""
    lines = sorted(json.dumps(s.to_json(), sort_keys=True) for s in specs)
    for data in sorted({s.data for s in specs if s.data}):
        folder = dataset_folder(data)
        lines.append(json.dumps({"data": str(folder.resolve()), "files": dataset_fingerprint(folder)}, sort_keys=True))
    digest = hashlib.sha1("\n".join(lines).encode()).hexdigest()[:12]
    return f"grid-{digest}"


def prepare_grid(storage: Any, name: str, specs: Sequence[RunSpec], wait_seconds: float = 60.0) -> Any:
    """Create the grid's study and enqueue one trial per run, or load it if another process did.

    Creating a study is atomic in the storage, so of several processes started together exactly one fills
    the queue; the others wait until it is filled.
    """
    import optuna

    try:
        study = optuna.create_study(study_name=name, storage=storage, direction="maximize")
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(study_name=name, storage=storage)
        deadline = time.monotonic() + wait_seconds
        while "grid_size" not in study.user_attrs:
            if time.monotonic() > deadline:
                raise GridError(
                    f"study {name} in the grid's storage was never filled (its creator died); delete it "
                    f"(optuna delete-study --study-name {name} --storage URL) and run the command again"
                ) from None
            time.sleep(0.5)
        return study
    for spec in specs:
        study.enqueue_trial({}, user_attrs={"run": spec.key, "spec": spec.to_json()})
    study.set_user_attr("grid_size", len(specs))
    return study


def _pop_waiting(storage: Any, study_id: int) -> Any | None:
    """Take one enqueued run: the storage moves a trial from WAITING to RUNNING for one caller only."""
    import optuna
    from optuna.trial import TrialState

    for trial in storage.get_all_trials(study_id, deepcopy=False, states=(TrialState.WAITING,)):
        try:
            if storage.set_trial_state_values(trial._trial_id, state=TrialState.RUNNING):
                return storage.get_trial(trial._trial_id)
        except optuna.exceptions.UpdateFinishedTrialError:
            continue
    return None


@contextlib.contextmanager
def _heartbeat(storage: Any, trial_id: int) -> Iterator[None]:
    stop = threading.Event()

    def beat() -> None:
        interval = storage.get_heartbeat_interval()
        while True:
            with contextlib.suppress(Exception):  # a missed beat only risks a re-queue, never a wrong result
                storage.record_heartbeat(trial_id)
            if stop.wait(interval):
                return

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


# -- one run --------------------------------------------------------------------------------------------------
def execute_run(spec: RunSpec, runs_dir: Path, threads: int = 1, command: str = "") -> dict[str, Any]:
    """Train ``spec`` in ``runs_dir/<key>``, resume it from its last checkpoint, or reuse it when finished.

    A finished run is checked against the spec: if its config differs in anything that changes a result,
    it is refused rather than silently reused.
    """
    from mdrchca.training.api import resume, train

    folder = RunFolder(runs_dir / spec.key)
    wanted = spec.config(threads)
    if folder.is_finished:
        _check_same_run(folder, wanted)
        return folder.read_metrics()
    if folder.is_run and folder.file(LAST_CHECKPOINT).is_file():
        _check_same_run(folder, wanted)
        log.info("resuming %s", spec.key)
        return resume(folder.path, overrides=[f"num_threads={threads}"], command=command or None).metrics
    if folder.is_run:  # died before its first epoch ended: nothing worth keeping, and nobody else holds it
        with folder.locked():
            for entry in folder.path.iterdir():
                if entry.name != ".lock" and entry.is_file():
                    entry.unlink()
    log.info("training %s", spec.key)
    return train(wanted, out=folder.path, command=command or None).metrics


def _settings(config: Config) -> dict[str, Any]:
    raw = config.to_dict()
    flat = {f"{section}.{k}": v for section in Config.SECTIONS for k, v in raw[section].items()}
    return {k: v for k, v in flat.items() if k.split(".")[-1] not in SETTING_KEYS_IGNORED} | {"model": raw["model"]}


def _check_same_run(folder: RunFolder, wanted: Config) -> None:
    """A run folder is reused only for the same settings on the same data: its config must match in everything
    that changes a result, and the dataset it recorded must have the files the spec's dataset has now (two
    datasets in folders of one name share a run key, so the name alone proves nothing)."""
    have, want = _settings(folder.read_config()), _settings(wanted)
    differ = sorted(k for k in set(have) | set(want) if have.get(k) != want.get(k))
    if differ:
        shown = ", ".join(f"{k}: {have.get(k)!r} there, {want.get(k)!r} asked" for k in differ[:3])
        raise GridError(f"{folder.path}: holds a run with other settings ({shown}); remove it or use another --out")
    recorded = folder.provenance().get("data", {})
    data = wanted.data.data_path
    if data is None or not recorded.get("fingerprint"):
        return  # the bundled catalogue, or a run recorded without a fingerprint
    now = dataset_fingerprint(dataset_folder(data))
    if now != recorded["fingerprint"]:
        raise GridError(
            f"{folder.path}: holds a run of another dataset ({recorded.get('path')}, whose files differ from "
            f"{data}'s); use another --out for this dataset"
        )


# -- workers --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WorkerOptions:
    """How a worker reaches the grid: its storage URL, study, output folder, threads and heartbeat."""

    url: str
    study: str
    out: str
    threads: int = 1
    heartbeat: int = HEARTBEAT_SECONDS
    grace: int = GRACE_SECONDS
    poll_seconds: float = 1.0
    command: str = ""
    runs: tuple[str, ...] = ()
    """The command's own runs, as :meth:`RunSpec.to_json` in JSON: a worker executes nothing else, whatever the
    storage holds (a storage is a file in ``--out``, or a shared database: neither is trusted)."""


def work(options: WorkerOptions, worker: int = 0) -> int:
    """Take runs from the grid until none is waiting or running; returns how many this worker executed.

    While another worker's run is still going, this one waits: if that worker dies, its run is re-queued
    after the grace period and this worker finishes it.
    """
    import optuna
    from optuna.trial import TrialState

    storage = open_storage(options.url, options.heartbeat, options.grace)
    study = optuna.load_study(study_name=options.study, storage=storage)
    study_id = storage.get_study_id_from_name(options.study)
    runs_dir = Path(options.out) / RUNS_FOLDER
    own = set(options.runs)
    done = 0
    while True:
        optuna.storages.fail_stale_trials(study)
        trial = _pop_waiting(storage, study_id)
        if trial is None:
            if not storage.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING)):
                return done
            time.sleep(options.poll_seconds)
            continue
        raw = trial.user_attrs.get("spec")
        if json.dumps(raw, sort_keys=True) not in own:
            log.warning(
                "worker %d: trial %d of the storage is not one of this command's runs; left undone",
                worker,
                trial.number,
            )
            storage.set_trial_user_attr(trial._trial_id, "error", "not one of the command's runs")
            study.tell(trial.number, state=TrialState.FAIL)
            continue
        spec = RunSpec.from_json(raw)
        log.info("worker %d (pid %d) takes %s", worker, os.getpid(), spec.key)
        with _heartbeat(storage, trial._trial_id):
            try:
                metrics = execute_run(spec, runs_dir, options.threads, options.command)
            except Exception as exc:  # recorded on the trial; the grid reports every failed run at the end
                if _raised_by_interrupt(exc):  # a library's writer turned Ctrl-C into its own error
                    raise KeyboardInterrupt from exc
                log.exception("%s failed", spec.key)
                storage.set_trial_user_attr(trial._trial_id, "error", f"{exc.__class__.__name__}: {exc}")
                study.tell(trial.number, state=TrialState.FAIL)
                continue
        metric = spec.config().train.valid_metric
        storage.set_trial_user_attr(trial._trial_id, "worker_pid", os.getpid())
        study.tell(trial.number, float(metrics["valid"][metric]))
        done += 1


def _raised_by_interrupt(exc: BaseException) -> bool:
    """Whether ``exc`` was raised while a ``KeyboardInterrupt`` was being handled (anywhere in its chain): the
    run was interrupted, not failed, and stays in the queue for the rerun."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, KeyboardInterrupt):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def _worker_process(options: WorkerOptions, worker: int) -> None:
    """Entry point of a spawned worker: its own log file, its own thread count."""
    import mdrchca.models  # noqa: F401  (registers the models in a fresh interpreter)

    logs = Path(options.out) / LOGS_FOLDER
    logs.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(logs / f"worker-{worker}-{os.getpid()}.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    try:
        work(options, worker)
    except KeyboardInterrupt:  # Ctrl-C reaches every process of the terminal: the parent says what to do
        log.info("worker %d interrupted", worker)
        sys.exit(130)


@dataclass
class GridResult:
    """What a grid produced: one row per run (``frame``) and the runs that failed (key -> error)."""

    frame: pd.DataFrame
    failed: dict[str, str]
    seconds: float


@dataclass
class GridOptions:
    """How a grid runs (each a command-line option of the experiment commands)."""

    workers: Annotated[int, AT_LEAST_ONE] = 1
    """Local worker processes; each takes runs from the grid's queue until it is empty."""
    threads: Annotated[int, NON_NEGATIVE] = 0
    """Torch threads per worker (0: the machine's cores divided among the workers, at least one); workers x
    threads should not exceed the cores, or every epoch slows down."""
    storage: str | None = None
    """Database URL of the queue (``postgresql://user@host/db`` for workers on several machines sharing the
    output folder); default: SQLite in ``<out>/grid.db``."""
    progress: bool = True
    """A bar over the grid's runs."""
    heartbeat: Annotated[int, AT_LEAST_ONE] = HEARTBEAT_SECONDS
    """Seconds between a running run's heartbeats."""
    grace: Annotated[int, AT_LEAST_ONE] = GRACE_SECONDS
    """Seconds without a heartbeat after which a run's worker is taken as dead and the run is re-queued."""

    def validate(self) -> None:
        if self.grace <= self.heartbeat:
            raise ConfigError(f"grace ({self.grace} s) must exceed heartbeat ({self.heartbeat} s)")


def run_grid(
    specs: Sequence[RunSpec], out: str | Path, options: GridOptions | None = None, command: str | None = None
) -> GridResult:
    """Run every spec (reusing finished runs) on ``options.workers`` local processes, then collect one row per
    run. Several machines work on one grid when each runs the same command with the same ``storage`` URL and
    a shared ``out``.
    """
    options = options or GridOptions()
    check_options(options)
    if not specs:
        raise GridError("the grid is empty; give at least one model, dataset and seed")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise GridError(f"{out}: --out is a file; choose a folder for the grid")
    guard_output(out, "the experiment", itself=True)
    check_specs(specs)
    study, worker = _queued(specs, out, options, command)
    started = time.perf_counter()
    _run_workers(study, worker, len(specs), options)
    seconds = time.perf_counter() - started
    failed = _failures(study)  # a failed run's folder may hold another run's metrics: never collected
    return GridResult(collect([s for s in specs if s.key not in failed], out), failed, seconds)


def _queued(
    specs: Sequence[RunSpec], out: Path, options: GridOptions, command: str | None
) -> tuple[Any, WorkerOptions]:
    """The grid's study with every spec queued (or found queued by another process), ``grid.json`` written,
    and what each worker needs to reach it; warns about runs a stopped worker left running."""
    from optuna.trial import TrialState

    threads = options.threads or max(1, (os.cpu_count() or 1) // options.workers)
    out.mkdir(parents=True, exist_ok=True)
    url = storage_url(out, options.storage)
    name = grid_name(specs)
    study = prepare_grid(open_storage(url, options.heartbeat, options.grace), name, specs)
    shown_url = url if options.storage is None else "(--storage)"  # a URL may hold a password
    write_json(out / GRID_FILE, {"study": name, "storage": shown_url, "runs": [s.key for s in specs]})
    worker = WorkerOptions(
        url,
        name,
        str(out),
        threads,
        options.heartbeat,
        options.grace,
        command=command or " ".join(sys.argv),
        runs=tuple(json.dumps(spec.to_json(), sort_keys=True) for spec in specs),
    )
    stale = len(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))
    if stale:
        log.warning(
            "%d run(s) of this grid were left running by a worker that stopped; they are taken up again once "
            "their heartbeat is %d s old",
            stale,
            options.grace,
        )
    return study, worker


def _run_workers(study: Any, worker: WorkerOptions, total: int, options: GridOptions) -> None:
    """Start ``options.workers`` spawned workers and follow them to the end; Ctrl-C and a crashed worker are
    one line each, saying that the same command finishes the grid."""
    out = Path(worker.out)
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_worker_process, args=(worker, i)) for i in range(options.workers)]
    for process in processes:
        process.start()
    try:
        _follow(study, total, processes, options.progress)
        for process in processes:
            process.join()
    except KeyboardInterrupt:
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()
        raise GridError(
            f"interrupted; run the same command again to finish the grid (finished runs are kept, the interrupted "
            f"ones resume from their last epoch about {options.grace} s later)"
        ) from None
    crashed = [p.exitcode for p in processes if p.exitcode != 0]
    if crashed:
        raise GridError(
            f"{len(crashed)} worker(s) exited with code(s) {crashed}; see {out / LOGS_FOLDER}; run the command again "
            "to finish the grid (finished runs are kept)"
        )


def _follow(study: Any, total: int, processes: list[Any], progress: bool) -> None:
    """A bar over the grid's runs until every worker has exited."""
    from optuna.trial import TrialState

    with tqdm(total=total, desc="runs", unit="run", disable=not progress) as bar:
        while any(p.is_alive() for p in processes):
            finished = {  # a failed trial without an error is a dead worker's, re-queued: not finished
                t.user_attrs.get("run")
                for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.FAIL))
                if t.state == TrialState.COMPLETE or "error" in t.user_attrs
            }
            bar.n = len(finished)
            bar.refresh()
            time.sleep(1.0)
        bar.n = total
        bar.refresh()


def _failures(study: Any) -> dict[str, str]:
    from optuna.trial import TrialState

    complete = {t.user_attrs["run"] for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))}
    return {
        t.user_attrs["run"]: t.user_attrs.get("error", "worker died")
        for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
        if t.user_attrs["run"] not in complete and "error" in t.user_attrs
    }


def collect(specs: Sequence[RunSpec], out: str | Path) -> pd.DataFrame:
    """One row per finished run of ``specs``: its labels, seed, validation and test metrics, cost and folder."""
    rows = []
    for spec in specs:
        folder = RunFolder(Path(out) / RUNS_FOLDER / spec.key)
        if not folder.is_finished:
            continue
        metrics = folder.read_metrics()
        rows.append(
            {
                "dataset": spec.data_name,
                "model": spec.model,
                **dict(spec.labels),
                "seed": spec.seed,
                "setting": spec.variant,
                **{f"valid {k}": v for k, v in metrics["valid"].items()},
                **{f"test {k}": v for k, v in metrics["test"].items()},
                "best epoch": metrics["best_epoch"],
                "epochs": metrics["epochs"],
                "seconds": metrics["seconds"],
                "s/epoch": metrics.get("seconds_per_epoch"),
                "run": str(Path(RUNS_FOLDER) / spec.key),
            }
        )
    return pd.DataFrame(rows)

"""Grids on Optuna's storage: every run done once, finished runs reused, a dead worker's run finished by
another, and the same on a real PostgreSQL server."""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

import mdrchca.experiments.grid as grid_module
import mdrchca.models  # noqa: F401  (registers the models)
from mdrchca.experiments.grid import (
    RUNS_FOLDER,
    GridError,
    GridOptions,
    RunSpec,
    WorkerOptions,
    _worker_process,
    grid_name,
    open_storage,
    prepare_grid,
    run_grid,
    storage_url,
    work,
)
from mdrchca.training.api import train


def _specs(data: Path, seeds: tuple[int, ...] = (1, 2, 3)) -> list[RunSpec]:
    return [RunSpec(model, str(data), seed, ("epochs=2",)) for model in ("lightgcn", "bpr") for seed in seeds]


def _trials_by_run(url: str, specs: list[RunSpec]) -> dict[str, list[TrialState]]:
    study = optuna.load_study(study_name=grid_name(specs), storage=open_storage(url))
    found: dict[str, list[TrialState]] = {}
    for trial in study.get_trials(deepcopy=False):
        found.setdefault(trial.user_attrs["run"], []).append(trial.state)
    return found


def _trial_states(out: Path) -> list[tuple[int, str]]:
    """The grid's trials as the SQLite file holds them, read without opening an Optuna storage."""
    import sqlite3

    with contextlib.closing(sqlite3.connect(out / "grid.db")) as db:
        return db.execute("SELECT number, state FROM trials ORDER BY number").fetchall()


def _check_each_run_done_once(out: Path, specs: list[RunSpec], url: str) -> None:
    trials = _trials_by_run(url, specs)
    assert sorted(trials) == sorted(s.key for s in specs), "a run was lost or added"
    assert all(states == [TrialState.COMPLETE] for states in trials.values()), trials
    for spec in specs:
        record = json.loads((out / RUNS_FOLDER / spec.key / "run.json").read_text())
        assert "resumed" not in record, f"{spec.key} was trained in two sessions"


def test_two_workers_complete_a_grid_once_and_a_rerun_reuses_it(vector_catalogue: Path, tmp_path: Path) -> None:
    specs = _specs(vector_catalogue)
    out = tmp_path / "grid"
    result = run_grid(specs, out, GridOptions(workers=2, threads=1, progress=False))
    assert len(result.frame) == len(specs) and not result.failed
    _check_each_run_done_once(out, specs, storage_url(out, None))
    started = {s.key: json.loads((out / RUNS_FOLDER / s.key / "run.json").read_text())["started"] for s in specs}

    bigger = _specs(vector_catalogue, (1, 2, 3, 4))  # a new grid containing the old runs
    again = run_grid(bigger, out, GridOptions(workers=2, threads=1, progress=False))
    assert len(again.frame) == len(bigger)
    for spec in specs:
        record = json.loads((out / RUNS_FOLDER / spec.key / "run.json").read_text())
        assert record["started"] == started[spec.key] and "resumed" not in record, f"{spec.key} was retrained"
    logs = "".join(p.read_text() for p in (out / "logs").glob("*.log"))
    assert logs.count("training ") == len(bigger), "each run is trained exactly once over both grids"


def test_a_finished_run_with_other_settings_is_refused_not_reused(vector_catalogue: Path, tmp_path: Path) -> None:
    spec = RunSpec("lightgcn", str(vector_catalogue), 1, ("epochs=2",))
    out = tmp_path / "grid"
    config = spec.config(1)
    config.train.learning_rate = 0.05  # someone trained other settings into the grid's folder
    train(config, out=out / RUNS_FOLDER / spec.key)
    result = run_grid([spec], out, GridOptions(workers=1, threads=1, progress=False))
    assert "learning_rate" in result.failed[spec.key] and result.frame.empty  # its numbers are not this spec's


def _queued_grid(spec: RunSpec, out: Path) -> WorkerOptions:
    """A one-run grid queued in ``out``'s SQLite storage (heartbeat 1 s, grace 3 s), and a worker's options."""
    out.mkdir()
    url = storage_url(out, None)
    prepare_grid(open_storage(url, 1, 3), grid_name([spec]), [spec])
    own = (json.dumps(spec.to_json(), sort_keys=True),)
    return WorkerOptions(url, grid_name([spec]), str(out), 1, heartbeat=1, grace=3, poll_seconds=0.2, runs=own)


def test_a_killed_worker_leaves_a_run_that_another_worker_finishes(vector_catalogue: Path, tmp_path: Path) -> None:
    spec = RunSpec("lightgcn", str(vector_catalogue), 1, ("epochs=60", "patience=1000"))
    out = tmp_path / "grid"
    options = _queued_grid(spec, out)
    url = options.url
    victim = multiprocessing.get_context("spawn").Process(target=_worker_process, args=(options, 0))
    victim.start()
    log_file = out / RUNS_FOLDER / spec.key / "log.csv"
    deadline = time.monotonic() + 120
    while not (log_file.is_file() and len(log_file.read_text().splitlines()) > 5):
        assert time.monotonic() < deadline and victim.is_alive(), "the first worker never got going"
        time.sleep(0.05)
    os.kill(victim.pid, signal.SIGKILL)
    victim.join()
    assert not (out / RUNS_FOLDER / spec.key / "metrics.json").exists(), "killed too late to test anything"

    assert work(options, worker=1) == 1  # waits out the grace period, then resumes the run
    states = _trials_by_run(url, [spec])[spec.key]
    assert sorted(s.name for s in states) == ["COMPLETE", "FAIL"]
    record = json.loads((out / RUNS_FOLDER / spec.key / "run.json").read_text())
    assert len(record["resumed"]) == 1
    finished = json.loads((out / RUNS_FOLDER / spec.key / "metrics.json").read_text())
    uninterrupted = train(spec.config(1)).metrics
    assert finished["valid"] == uninterrupted["valid"] and finished["test"] == uninterrupted["test"]


def test_an_error_raised_while_ctrl_c_unwinds_leaves_the_run_queued_not_failed(
    vector_catalogue: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """torch.save turns a KeyboardInterrupt into a RuntimeError (measured: 7 of 40 interrupted saves); the
    worker must stop as interrupted, with the run still RUNNING for the rerun, not record it as failed."""
    spec = RunSpec("lightgcn", str(vector_catalogue), 1, ("epochs=2",))
    options = _queued_grid(spec, tmp_path / "grid")

    def interrupted_writer(*args: object, **kwargs: object) -> None:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise RuntimeError("PytorchStreamWriter failed writing file") from None

    monkeypatch.setattr(grid_module, "execute_run", interrupted_writer)
    with pytest.raises(KeyboardInterrupt):
        work(options)
    assert _trials_by_run(options.url, [spec])[spec.key] == [TrialState.RUNNING]

    def plain_failure(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug")

    other = _queued_grid(spec, tmp_path / "other")
    monkeypatch.setattr(grid_module, "execute_run", plain_failure)
    assert work(other) == 0
    assert _trials_by_run(other.url, [spec])[spec.key] == [TrialState.FAIL]


def test_a_crafted_storage_cannot_run_or_report_a_run_the_command_did_not_ask_for(
    vector_catalogue: Path, small_catalogue: Path, tmp_path: Path
) -> None:
    """A grid.db left in --out with a waiting trial of another dataset under the command's own study: the
    workers leave it undone, and the command's table has only its own run."""
    spec = RunSpec("bpr", str(vector_catalogue), 1, ("epochs=2",))
    foreign = RunSpec("bpr", str(small_catalogue), 1, ("epochs=2",))
    out = tmp_path / "grid"
    out.mkdir()
    study = prepare_grid(open_storage(storage_url(out, None)), grid_name([spec]), [spec])
    study.enqueue_trial({}, user_attrs={"run": spec.key, "spec": foreign.to_json()})
    result = run_grid([spec], out, GridOptions(workers=1, threads=1, progress=False))
    assert list(result.frame["dataset"]) == ["vectors"]
    assert not (out / RUNS_FOLDER / foreign.key).exists()
    record = json.loads((out / RUNS_FOLDER / spec.key / "run.json").read_text())
    assert Path(record["data"]["path"]).name == "vectors"


def test_a_finished_run_of_another_dataset_with_the_same_name_is_not_reused(
    vector_catalogue: Path, tmp_path: Path
) -> None:
    """compare --data a/tiny, then --data b/tiny into the same --out: the second refuses the first's run."""
    import shutil

    first, second = tmp_path / "a" / "tiny", tmp_path / "b" / "tiny"
    shutil.copytree(vector_catalogue, first)
    shutil.copytree(vector_catalogue, second)
    (second / "tiny.inter").write_text("".join((first / "vectors.inter").read_text().splitlines(True)[:-50]))
    (second / "vectors.inter").unlink()
    out = tmp_path / "grid"
    run_grid([RunSpec("bpr", str(first), 1, ("epochs=2",))], out, GridOptions(workers=1, threads=1, progress=False))
    result = run_grid(
        [RunSpec("bpr", str(second), 1, ("epochs=2",))], out, GridOptions(workers=1, threads=1, progress=False)
    )
    ((key, error),) = result.failed.items()
    assert "holds a run of another dataset" in error
    assert result.frame.empty  # the other dataset's numbers are not reported for this one


# -- PostgreSQL ------------------------------------------------------------------------------------------------
def _postgres_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return found[-1].parent if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture()
def postgres_url() -> Iterator[str]:
    """A throw-away PostgreSQL server on 127.0.0.1 (Debian's postgresql package), trust auth."""
    bin_dir = _postgres_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed (Debian's postgresql package; .ci/run installs it)")
    pytest.importorskip("psycopg2", reason="the psycopg2 driver is missing (pip install psycopg2-binary)")
    root = Path(tempfile.mkdtemp(prefix="mdrchca-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # the server refuses to run as root
        shutil.chown(root, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = root / "data", _free_port()
    subprocess.run(
        [*as_user, str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"],
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1"
    subprocess.run(
        [*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "start"],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], capture_output=True
        )
        shutil.rmtree(root, ignore_errors=True)


def test_two_workers_share_a_grid_through_postgresql(vector_catalogue: Path, tmp_path: Path, postgres_url: str) -> None:
    specs = _specs(vector_catalogue, (1, 2))
    out = tmp_path / "grid"
    result = run_grid(specs, out, GridOptions(workers=2, threads=1, storage=postgres_url, progress=False))
    assert len(result.frame) == len(specs) and not result.failed
    _check_each_run_done_once(out, specs, postgres_url)
    assert "postgres" not in (out / "grid.json").read_text(), "a storage URL may hold a password"


def test_grid_options_and_outputs_are_checked_before_any_run(vector_catalogue: Path, tmp_path: Path) -> None:
    from mdrchca.errors import ConfigError, MdrchcaError

    spec = RunSpec("lightgcn", str(vector_catalogue), 1, ("epochs=1",))
    with pytest.raises(ConfigError, match="grace"):
        run_grid([spec], tmp_path / "a", GridOptions(heartbeat=10, grace=5, progress=False))
    with pytest.raises(ConfigError, match="workers"):
        run_grid([spec], tmp_path / "a", GridOptions(workers=0, progress=False))
    (tmp_path / "file").write_text("x")
    with pytest.raises(MdrchcaError, match="is a file"):
        run_grid([spec], tmp_path / "file", GridOptions(progress=False))
    with pytest.raises(MdrchcaError, match="cannot open"):
        run_grid([spec], tmp_path / "b", GridOptions(storage="nosuchdb://x", progress=False))
    assert not (tmp_path / "a").exists() and not (tmp_path / "b" / "runs").exists()


def _pop_all(url: str, name: str, found: list) -> None:
    from mdrchca.experiments.grid import _pop_waiting

    storage = open_storage(url)
    study_id = storage.get_study_id_from_name(name)
    while (trial := _pop_waiting(storage, study_id)) is not None:
        found.append(trial.user_attrs["run"])


def test_concurrent_workers_never_take_the_same_run(tmp_path: Path) -> None:
    specs = [RunSpec("lightgcn", None, seed) for seed in range(60)]
    url = storage_url(tmp_path, None)
    prepare_grid(open_storage(url), grid_name(specs), specs)
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        found = manager.list()
        workers = [context.Process(target=_pop_all, args=(url, grid_name(specs), found)) for _ in range(4)]
        for process in workers:
            process.start()
        for process in workers:
            process.join()
        taken = list(found)
    assert sorted(taken) == sorted(s.key for s in specs), "a run was taken twice or not at all"


def test_a_storage_error_never_prints_the_password() -> None:
    from mdrchca.experiments.grid import GridError

    with pytest.raises(GridError) as caught:
        open_storage("postgresql://alice:s3cret@127.0.0.1:1/db")
    assert "s3cret" not in str(caught.value) and "alice:***@127.0.0.1" in str(caught.value)


def test_ctrl_c_ends_a_grid_with_one_line_and_the_rerun_says_what_it_waits_for(
    vector_catalogue: Path, tmp_path: Path
) -> None:
    """SIGINT to the whole process group (what Ctrl-C sends): no worker traceback, one line saying how to
    finish; the rerun warns that it waits for the interrupted run, then finishes it."""
    script = tmp_path / "grid.py"
    script.write_text(
        "import sys, logging\n"
        "from mdrchca.experiments.grid import GridOptions, RunSpec, run_grid\n"
        "from mdrchca.errors import MdrchcaError\n"
        "if __name__ == '__main__':\n"
        "    logging.basicConfig(level=logging.WARNING)\n"
        f"    spec = RunSpec('lightgcn', {str(vector_catalogue)!r}, 1, ('epochs=400', 'patience=1000'))\n"
        "    try:\n"
        f"        run_grid([spec], {str(tmp_path / 'out')!r}, GridOptions(1, 1, None, False, 1, 3))\n"
        "    except MdrchcaError as exc:\n"
        "        print(f'error: {exc}', file=sys.stderr)\n"
        "        sys.exit(2)\n"
    )
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, str(script)],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        # a test suite started in the background (`make test &`) inherits an ignored SIGINT, which Python then
        # never turns into KeyboardInterrupt: give the grid the usual Ctrl-C whatever started pytest
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    log_file = None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = list((tmp_path / "out" / RUNS_FOLDER).glob("*/*/*/*/log.csv"))
        if found and len(found[0].read_text().splitlines()) > 3:
            log_file = found[0]
            break
        time.sleep(0.1)
    if log_file is None:
        proc.kill()
        raise AssertionError(f"the run never got going: {proc.communicate()[1][-2000:]}")
    os.killpg(proc.pid, signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "Traceback" not in stderr, stderr
    assert "interrupted; run the same command again" in stderr
    states = _trial_states(tmp_path / "out")
    rerun = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    worker_logs = "\n".join(p.read_text()[-1500:] for p in sorted((tmp_path / "out").glob("logs/*.log")))
    assert "left running by a worker that stopped" in rerun.stderr, (states, worker_logs)
    assert (log_file.parent / "metrics.json").is_file()
    next_log = log_file.parent / "run.json"
    assert json.loads(next_log.read_text()).get("resumed")


def test_a_storage_file_optuna_cannot_use_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    import hashlib
    import sqlite3

    old = tmp_path / "old" / "grid.db"
    old.parent.mkdir()
    optuna.storages.RDBStorage(f"sqlite:///{old}").engine.dispose()
    with sqlite3.connect(old) as db:  # as an older Optuna left it: an earlier schema, a table it did not have
        db.execute("UPDATE alembic_version SET version_num = 'v2.4.0.a'")
        db.execute("DROP TABLE trial_heartbeats")
    db.close()
    junk = tmp_path / "junk" / "grid.db"
    junk.parent.mkdir()
    junk.write_text("not a database, but a file someone named grid.db\n" * 20)
    for path, reason in ((old, "no longer compatible"), (junk, "file is not a database")):
        before = hashlib.sha256(path.read_bytes()).hexdigest()
        with pytest.raises(GridError, match=f"{path}: not a storage this Optuna can use .*{reason}") as caught:
            open_storage(f"sqlite:///{path}")
        assert "\n" not in str(caught.value) and "remove it or choose another --out" in str(caught.value)
        assert hashlib.sha256(path.read_bytes()).hexdigest() == before
        assert sorted(p.name for p in path.parent.iterdir()) == ["grid.db"]

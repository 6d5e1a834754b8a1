"""The Python API: train / load_run / Run, the same numbers as the command, and recommendations that are
never items the user has seen."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import mdrchca
from mdrchca.config import Config
from mdrchca.training.checkpoint import load_checkpoint

OPTIONS = ["epochs=4", "batch_size=512", "device=cpu", "num_threads=1", "learning_rate=0.01"]


def test_train_without_a_folder_reports_test_at_the_best_epoch(small_catalogue: Path, tmp_path: Path) -> None:
    def config() -> Config:
        cfg = Config.load("lightgcn", overrides=[*OPTIONS, "epochs=6", "patience=1"])
        cfg.data.data_path = str(small_catalogue)
        return cfg

    in_memory = mdrchca.train(config())
    on_disk = mdrchca.train(config(), out=tmp_path / "run")
    assert in_memory.path is None and on_disk.path == tmp_path / "run"
    assert in_memory.metrics["best_epoch"] == on_disk.metrics["best_epoch"]
    assert in_memory.metrics["test"] == on_disk.metrics["test"]  # both tested at the best epoch, bit for bit
    assert in_memory.metrics["valid"] == on_disk.metrics["valid"]


def test_load_run_evaluates_to_the_recorded_metrics(small_catalogue: Path, tmp_path: Path) -> None:
    cfg = Config.load("bpr", overrides=OPTIONS)
    cfg.data.data_path = str(small_catalogue)
    trained = mdrchca.train(cfg, out=tmp_path / "bpr")
    run = mdrchca.load_run(tmp_path / "bpr")
    assert run.metrics == json.loads((tmp_path / "bpr" / "metrics.json").read_text()) == trained.metrics
    again = run.evaluate()
    assert again["test"] == pytest.approx(trained.metrics["test"])
    assert again["valid"] == pytest.approx(trained.metrics["valid"])


def test_recommend_never_returns_a_seen_item_and_says_when_it_runs_short(tmp_path: Path) -> None:
    from tests.conftest import tiny_rows, write_inter

    data = write_inter(tmp_path / "six", tiny_rows())  # 3 users, each has seen 4 of the 6 items
    cfg = Config.load("bpr", overrides=[*OPTIONS, "topk=[2]", "valid_metric=recall@2", "batch_size=4"])
    cfg.data.data_path = str(data)
    run = mdrchca.train(cfg)
    frame = run.recommend(None, k=5)
    seen = {(u, i) for u, i, _ in tiny_rows()}
    assert not {(u, i) for u, i in zip(frame.userID, frame.itemID, strict=True)} & seen
    assert frame.groupby("userID").size().tolist() == [2, 2, 2]  # the two unseen items, not five
    assert frame.attrs["short_users"] == 3
    assert frame["rank"].tolist() == [1, 2] * 3
    assert np.isfinite(frame.score).all()
    with pytest.raises(mdrchca.MdrchcaError, match="unknown user 7"):
        run.recommend([7], k=1)


KILL_DURING_SAVE = """
import os, sys
import mdrchca.training.checkpoint as checkpoint
real_save = checkpoint.torch.save
calls = {"n": 0}

def dying_save(obj, handle, *args, **kwargs):
    calls["n"] += 1
    if calls["n"] == int(os.environ["KILL_AT_SAVE"]):
        import io
        buffer = io.BytesIO()
        real_save(obj, buffer)
        handle.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
        handle.flush()
        os._exit(137)  # killed in the middle of writing a checkpoint
    return real_save(obj, handle, *args, **kwargs)

checkpoint.torch.save = dying_save
from mdrchca.cli.main import cli
cli(sys.argv[1:])
"""


@pytest.mark.parametrize("kill_at_save", [3, 4])  # the third and fourth checkpoint writes (epoch 2)
def test_a_kill_while_checkpointing_resumes_to_identical_metrics(
    small_catalogue: Path, tmp_path: Path, kill_at_save: int
) -> None:
    args = ["-q", "train", "--model", "lightgcn", "--data", str(small_catalogue), "--no-progress"]
    args += [item for option in OPTIONS for item in ("--set", option)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    whole = subprocess.run([sys.executable, "-m", "mdrchca.cli.main", *args, "--out", str(tmp_path / "whole")], env=env)
    assert whole.returncode == 0
    killed = tmp_path / "killed"
    died = subprocess.run(
        [sys.executable, "-c", KILL_DURING_SAVE, *args, "--out", str(killed)],
        env={**env, "KILL_AT_SAVE": str(kill_at_save)},
    )
    assert died.returncode == 137
    assert not (killed / "metrics.json").exists()
    resumed = subprocess.run(
        [sys.executable, "-m", "mdrchca.cli.main", "-q", "train", "--out", str(killed), "--resume", "--no-progress"],
        env=env,
    )
    assert resumed.returncode == 0
    strip = lambda m: {k: v for k, v in m.items() if k not in ("seconds", "seconds_per_epoch")}  # noqa: E731
    assert strip(json.loads((killed / "metrics.json").read_text())) == strip(
        json.loads((tmp_path / "whole" / "metrics.json").read_text())
    )
    # the half-written temporary the kill left is cleared by the resume, which held the folder's lock
    assert not [p.name for p in killed.iterdir() if p.name.endswith(".tmp")]
    for name in ("best.pt", "last.pt"):
        assert "model" in load_checkpoint(killed / name)


@pytest.fixture
def finished_run(small_catalogue: Path, tmp_path: Path) -> Path:
    cfg = Config.load("bpr", overrides=[*OPTIONS, "epochs=2"])
    cfg.data.data_path = str(small_catalogue)
    mdrchca.train(cfg, out=tmp_path / "run")
    return tmp_path / "run"


@pytest.mark.parametrize(
    ("name", "edit"),
    [
        ("config.yaml", lambda text: text.replace("learning_rate: 0.01", "learning_rate: 0.5")),
        ("config.yaml", lambda text: text + "\n"),  # any byte counts
        ("split.inter", lambda text: "\n".join(text.splitlines()[:-1]) + "\n"),  # a deleted row
        ("split.inter", lambda text: text.replace("\t0\n", "\t2\n", 1)),  # a training row relabelled as test
    ],
)
def test_an_edited_config_or_split_is_refused_by_evaluate_and_resume(finished_run: Path, name: str, edit) -> None:
    from mdrchca.training.run_folder import RunFolderError

    path = finished_run / name
    path.write_text(edit(path.read_text()))
    with pytest.raises(RunFolderError, match=f"{name}: changed since the run wrote it"):
        mdrchca.load_run(finished_run)
    with pytest.raises(RunFolderError, match=f"{name}: changed since the run wrote it"):
        mdrchca.resume(finished_run, ["epochs=3"])


def test_a_resume_that_changes_a_resumable_option_records_the_new_config(finished_run: Path) -> None:
    mdrchca.resume(finished_run, ["epochs=3"])
    assert "epochs: 3" in (finished_run / "config.yaml").read_text()
    mdrchca.load_run(finished_run)  # the rewritten config is the recorded one
    record = json.loads((finished_run / "run.json").read_text())
    assert set(record["files"]) == {"config.yaml", "split.inter"}


def test_a_run_recorded_before_the_hashes_still_loads(finished_run: Path) -> None:
    record = json.loads((finished_run / "run.json").read_text())
    del record["files"]
    (finished_run / "run.json").write_text(json.dumps(record))
    mdrchca.load_run(finished_run)


def test_resume_accepts_the_dataset_s_interactions_file_for_its_folder(
    finished_run: Path, small_catalogue: Path
) -> None:
    inter = next(small_catalogue.glob("*.inter"))
    mdrchca.resume(finished_run, ["epochs=3"], data=inter)
    with pytest.raises(mdrchca.training.run_folder.RunFolderError, match="is not the run's dataset"):
        mdrchca.resume(finished_run, ["epochs=4"], data=finished_run)

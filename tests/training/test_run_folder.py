"""The run folder's rules: refused before anything is written, locked while trained, relocatable."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from mdrchca.cli.main import cli
from tests.training.test_checkpoint import plant_payload

TRAIN = ["--set", "epochs=2", "--set", "device=cpu", "--set", "batch_size=512", "--set", "num_threads=1"]


def train(data: Path, out: Path, *extra: str, model: str = "lightgcn"):
    return CliRunner().invoke(
        cli, ["-q", "train", "--model", model, "--data", str(data), *TRAIN, *extra, "--out", str(out), "--no-progress"]
    )


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def one_line_error(result) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


@pytest.fixture(scope="module")
def finished_run(small_catalogue: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "finished"
    result = train(small_catalogue, out)
    assert result.exit_code == 0, result.output
    return out


def test_a_finished_run_is_not_overwritten(finished_run: Path, small_catalogue: Path) -> None:
    before = snapshot(finished_run)
    line = one_line_error(train(small_catalogue, finished_run))
    assert "holds a finished run; continue it with --resume" in line
    assert snapshot(finished_run) == before


def test_a_folder_that_is_not_a_run_is_not_written_into(small_catalogue: Path, tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    assert "not empty and not a run (notes.txt)" in one_line_error(train(small_catalogue, out))
    assert sorted(os.listdir(out)) == ["notes.txt"]


def test_the_dataset_folder_is_refused_as_out(small_catalogue: Path) -> None:
    before = snapshot(small_catalogue)
    assert "--out is the dataset folder" in one_line_error(train(small_catalogue, small_catalogue))
    assert snapshot(small_catalogue) == before


def test_out_that_is_a_file_is_refused(small_catalogue: Path, tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    assert "--out is a file" in one_line_error(train(small_catalogue, tmp_path / "f"))


def test_a_refused_option_leaves_no_folder(small_catalogue: Path, tmp_path: Path) -> None:
    for option in ("learning_rate=-1", "topk=[0,20]", "embedding_size=0", "batch_size=0", "eval_every=0"):
        one_line_error(train(small_catalogue, tmp_path / "r", "--set", option))
        assert not (tmp_path / "r").exists(), option


def test_topk_above_the_catalogue_is_refused_before_writing(tmp_path: Path) -> None:
    from tests.conftest import tiny_rows, write_inter

    data = write_inter(tmp_path / "six", tiny_rows())
    line = one_line_error(train(data, tmp_path / "r"))
    assert "topk 50 exceeds the 6 items of six" in line
    assert not (tmp_path / "r").exists()


def test_resume_refuses_another_model_data_or_option(finished_run: Path, small_catalogue: Path, tmp_path: Path):
    before = snapshot(finished_run)
    runner = CliRunner()
    base = ["-q", "train", "--out", str(finished_run), "--resume", "--no-progress"]
    line = one_line_error(runner.invoke(cli, [*base, "--model", "bpr"]))
    assert "--model bpr disagrees with the run's model lightgcn" in line
    line = one_line_error(runner.invoke(cli, [*base, "--data", str(tmp_path)]))
    assert "is not the run's dataset" in line
    line = one_line_error(runner.invoke(cli, [*base, "--set", "n_layers=3"]))
    assert "--set n_layers: cannot change on --resume" in line
    assert snapshot(finished_run) == before
    # the run's own model and data are accepted
    ok = runner.invoke(cli, [*base, "--model", "lightgcn", "--data", str(small_catalogue)])
    assert ok.exit_code == 0, ok.output


def test_resume_may_extend_the_epochs(small_catalogue: Path, tmp_path: Path) -> None:
    out = tmp_path / "r"
    assert train(small_catalogue, out, "--set", "epochs=1").exit_code == 0
    result = CliRunner().invoke(
        cli, ["-q", "train", "--out", str(out), "--resume", "--set", "epochs=3", "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads((out / "metrics.json").read_text())["epochs"] == 3
    assert yaml.safe_load((out / "config.yaml").read_text())["train"]["epochs"] == 3
    assert len(json.loads((out / "run.json").read_text())["resumed"]) == 1


def test_a_copied_run_is_self_contained(finished_run: Path, tmp_path: Path) -> None:
    config = yaml.safe_load((finished_run / "config.yaml").read_text())
    assert config["data"]["split_file"] == "split.inter"
    copy = tmp_path / "elsewhere" / "copy"
    shutil.copytree(finished_run, copy)
    # the copy must read its own split: break the original's
    (finished_run / "split.inter").rename(finished_run / "split.moved")
    try:
        result = CliRunner().invoke(cli, ["-q", "evaluate", "--run", str(copy)])
    finally:
        (finished_run / "split.moved").rename(finished_run / "split.inter")
    assert result.exit_code == 0, result.output
    metrics = json.loads((finished_run / "metrics.json").read_text())
    assert json.loads(result.output)["test"] == pytest.approx(metrics["test"])


def test_a_moved_dataset_is_named_and_can_be_pointed_at(small_catalogue: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(small_catalogue, data)
    out = tmp_path / "run"
    assert train(data, out).exit_code == 0
    moved = tmp_path / "moved"
    data.rename(moved)
    line = one_line_error(CliRunner().invoke(cli, ["-q", "evaluate", "--run", str(out)]))
    assert "the run's dataset is not there any more; pass its new location with --data" in line
    result = CliRunner().invoke(cli, ["-q", "evaluate", "--run", str(out), "--data", str(moved)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["test"] == pytest.approx(json.loads((out / "metrics.json").read_text())["test"])


def test_the_run_records_its_provenance(finished_run: Path) -> None:
    record = json.loads((finished_run / "run.json").read_text())
    assert "train" in record["command"] and "--out" in record["command"]
    assert record["code"]["mdrchca"]
    assert {"python", "torch", "numpy"} <= set(record["libraries"])
    assert record["machine"]["cpu_count"] >= 1 and record["machine"]["torch_threads"] >= 1
    assert record["seeds"] == {"seed": 999, "split_seed": 999}
    assert "small.inter" in record["data"]["fingerprint"]


@pytest.mark.parametrize("command", ["evaluate", "recommend", "explain", "audit", "resume"])
def test_a_tampered_checkpoint_never_runs(finished_run: Path, tmp_path: Path, command: str) -> None:
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    marker = tmp_path / "payload-ran"
    plant_payload(run / ("last.pt" if command == "resume" else "best.pt"), marker)
    args = {
        "evaluate": ["evaluate", "--run", str(run)],
        "recommend": ["recommend", "--run", str(run), "--user", "1"],
        "explain": ["explain", "--run", str(run), "--item", "0", "--out", str(tmp_path / "x.png")],
        "audit": ["audit", "--run", str(run)],
        "resume": ["train", "--out", str(run), "--resume", "--no-progress"],
    }[command]
    line = one_line_error(CliRunner().invoke(cli, ["-q", *args]))
    assert "refused, it holds objects other than tensors" in line
    assert not marker.exists()


HOLD_LOCK = """
import sys, time, filelock
lock = filelock.FileLock(sys.argv[1], timeout=0)
lock.acquire()
print("held", flush=True)
time.sleep(60)
"""


def test_a_locked_run_folder_is_refused(small_catalogue: Path, tmp_path: Path) -> None:
    out = tmp_path / "busy"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(out / ".lock")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        line = one_line_error(train(small_catalogue, out))
        assert "another process is training into this run folder" in line
        assert os.listdir(out) == [".lock"]
    finally:
        holder.kill()
        holder.wait()


def test_two_trainings_into_one_folder_never_both_write(small_catalogue: Path, tmp_path: Path) -> None:
    out = tmp_path / "race"
    args = ["-m", "mdrchca.cli.main", "-q", "train", "--data", str(small_catalogue), *TRAIN, "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen(
            [sys.executable, *args, "--model", model, "--no-progress"],
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for model in ("lightgcn", "bpr")
    ]
    outcomes = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    codes = sorted(code for code, _ in outcomes)
    assert codes == [0, 2], outcomes
    refused = next(err for code, err in outcomes if code == 2)
    assert "another process is training" in refused or "holds a" in refused
    winner = ("lightgcn", "bpr")[[code for code, _ in outcomes].index(0)]
    assert json.loads((out / "metrics.json").read_text())["model"] == winner
    assert yaml.safe_load((out / "config.yaml").read_text())["model"] == winner


def test_a_run_stopped_before_its_first_epoch_says_how_to_start_again(small_catalogue: Path, tmp_path: Path) -> None:
    out = tmp_path / "early"
    assert train(small_catalogue, out, "--set", "epochs=1").exit_code == 0
    for name in ("last.pt", "best.pt", "metrics.json", "log.csv"):
        (out / name).unlink()  # as if killed during the first epoch
    assert "stopped before finishing its first epoch; remove the folder" in one_line_error(train(small_catalogue, out))
    resumed = CliRunner().invoke(cli, ["-q", "train", "--out", str(out), "--resume"])
    assert "no last.pt to resume from" in one_line_error(resumed)

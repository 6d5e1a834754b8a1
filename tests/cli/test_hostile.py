"""Hostile and careless input through the command: one line naming the problem and the fix, exit status 2,
no traceback, and nothing written."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from mdrchca.cli.main import cli
from tests.conftest import tiny_rows, write_inter


def _inter_bytes(tmp: Path, data: bytes) -> Path:
    folder = tmp / "d"
    folder.mkdir()
    (folder / "d.inter").write_bytes(data)
    return folder


def _with_feature(tmp: Path, array: np.ndarray) -> Path:
    folder = write_inter(tmp / "d", tiny_rows())
    np.save(folder / "text_feat.npy", array)
    return folder


def _emptied(folder: Path) -> Path:
    (folder / "text_feat.npy").write_bytes(b"")
    return folder


def _emptied(folder: Path) -> Path:
    (folder / "text_feat.npy").write_bytes(b"")
    return folder


def _catalogue(tmp: Path, items: bytes) -> Path:
    folder = write_inter(tmp / "c", tiny_rows())
    (folder / "items.tsv").write_bytes(items)
    return folder


TRAIN_DATA_CASES = {
    "latin-1 inter": (lambda t: _inter_bytes(t, "userID\titemID\n0\t1\n\xe9\t2\n".encode("latin-1")), "not UTF-8"),
    "binary inter": (lambda t: _inter_bytes(t, b"\x00\x01\x02\x89PNG\x00\x00"), "binary file|not UTF-8"),
    "empty inter": (lambda t: _inter_bytes(t, b""), "file is empty"),
    "repeated column": (lambda t: _inter_bytes(t, b"userID\titemID\titemID\n0\t1\t2\n"), "names column itemID twice"),
    "fractional id": (lambda t: _inter_bytes(t, b"userID\titemID\n0\t1.5\n"), "not non-negative integers"),
    "overflowing id": (
        lambda t: _inter_bytes(t, b"userID\titemID\n0\t99999999999999999999999\n"),
        "above max_id",
    ),
    "huge id": (lambda t: _inter_bytes(t, b"userID\titemID\n1000000000000\t1\n"), "above max_id 100000000"),
    "bad x_label": (lambda t: _inter_bytes(t, b"userID\titemID\tx_label\n0\t1\tb\n"), "it must hold labels 0/1/2"),
    "zero-column features": (lambda t: _with_feature(t, np.zeros((6, 0), np.float32)), "has 0 columns"),
    "empty npy": (lambda t: _emptied(_with_feature(t, np.zeros((6, 2), np.float32))), "empty file"),
    "nan features": (lambda t: _with_feature(t, np.full((6, 2), np.nan, np.float32)), "NaN or Inf"),
    "NUL bytes under a valid header": (lambda t: _sparse_inter(t), "a NUL byte at byte 18"),
    "one endless line": (
        lambda t: _inter_bytes(t, b"userID\titemID\n0\t1\n" + b"7" * (3 << 20) + b"\t1\n"),
        "a line longer than 1048576 bytes",
    ),
}


def _sparse_inter(tmp: Path) -> Path:
    """A valid header and row, then 256 MiB of NUL bytes (a sparse file: no disk used)."""
    folder = _inter_bytes(tmp, b"userID\titemID\n0\t1\n")
    with open(folder / "d.inter", "r+b") as handle:
        handle.seek(256 << 20)
        handle.write(b"\n")
    return folder


@pytest.mark.parametrize("case", sorted(TRAIN_DATA_CASES))
def test_bad_data_for_train(tmp_path: Path, case: str) -> None:
    make, message = TRAIN_DATA_CASES[case]
    data = make(tmp_path)
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["train", "--data", str(data), "--set", "epochs=1", "--out", str(out)])
    assert_one_line(result, message)
    assert not out.exists()


OPTION_CASES = {
    "negative learning rate": ("learning_rate=-0.1", "'learning_rate' must be > 0"),
    "nan learning rate": ("learning_rate=.nan", "finite number"),
    "zero batch": ("batch_size=0", "'batch_size' must be >= 1"),
    "zero eval_every": ("eval_every=0", "'eval_every' must be >= 1"),
    "negative embedding": ("embedding_size=-4", r"'embedding_size' must be in \[1, 4096\]"),
    "split ratios": ("split_ratios=[0.9,0.2,0.1]", "summing to 1"),
    "topk zero": ("topk=[0,20]", "'topk' must be >= 1"),
    "bad split mode": ("split_mode=items", "must be one of user, cold_items"),
    "unknown key": ("epoch=2", "did you mean 'epochs'"),
    "patience zero": ("patience=0", "'patience' must be >= 1"),
    "yaml tag": ("epochs=!!python/object/apply:os.system [true]", "--set epochs: its value is not a plain YAML"),
    "broken yaml": ("epochs=[1", "--set epochs: its value is not a plain YAML"),
    "negative seed": ("seed=-1", r"'seed' must be in \[0, 4294967295\]"),
    "seed beyond 2^32": ("seed=1099511627776", r"'seed' must be in \[0, 4294967295\]"),
    "huge embedding": ("embedding_size=100000000", r"'embedding_size' must be in \[1, 4096\]"),
}


@pytest.mark.parametrize("case", sorted(OPTION_CASES))
def test_bad_options_for_train(small_catalogue: Path, tmp_path: Path, case: str) -> None:
    option, message = OPTION_CASES[case]
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["train", "--data", str(small_catalogue), "--set", option, "--out", str(out)])
    assert_one_line(result, message)
    assert not out.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message for a machine without a GPU")
def test_cuda_without_a_gpu(small_catalogue: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["train", "--data", str(small_catalogue), "--set", "device=cuda", "--out", str(tmp_path / "r")]
    )
    assert_one_line(result, "torch finds no CUDA GPU here; use device=cpu")
    assert not (tmp_path / "r").exists()


FEATURE_CASES = {
    "zero image size": (["--set", "image_size=0"], "'image_size' must be >= 8"),
    "zero batch": (["--set", "batch_size=0"], "'batch_size' must be >= 1"),
    "negative pca": (["--set", "pca_dim=-1"], "'pca_dim' must be >= 0"),
    "bad dtype": (["--set", "dtype=int8"], "must be one of float16, float32"),
    "bad modality": (["--set", "modalities=[audio]"], "must be one of text, image"),
}


@pytest.mark.parametrize("case", sorted(FEATURE_CASES))
def test_bad_feature_options(small_catalogue: Path, tmp_path: Path, case: str) -> None:
    args, message = FEATURE_CASES[case]
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["features", "--catalogue", str(small_catalogue), *args, "--out", str(out)])
    assert_one_line(result, message)
    assert not out.exists()


ITEMS_CASES = {
    "latin-1": ("itemID\ttext\timage\n0\tcaf\xe9\t\n".encode("latin-1"), "not UTF-8"),
    "empty": (b"", "file is empty"),
    "header only": (b"itemID\ttext\timage\n", "no items"),
    "ragged": (b"itemID\ttext\timage\n0\ta\t\t\t\t\n1\tb\n", "malformed TSV"),
    "repeated column": (b"itemID\ttext\ttext\n0\ta\tb\n", "names column text twice"),
    "escaping image": (b"itemID\ttext\timage\n" + b"".join(b"%d\tt\t../x.png\n" % i for i in range(6)), "leaves"),
}


@pytest.mark.parametrize("case", sorted(ITEMS_CASES))
def test_bad_items_tsv(tmp_path: Path, case: str) -> None:
    content, message = ITEMS_CASES[case]
    catalogue = _catalogue(tmp_path, content)
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["features", "--catalogue", str(catalogue), "--out", str(out)])
    assert_one_line(result, message)
    assert not out.exists()


def test_a_config_file_that_is_not_utf8(small_catalogue: Path, tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_bytes(b"train:\n  epochs: \xff\n")
    args = ["train", "--data", str(small_catalogue), "--config", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "r")]
    assert_one_line(CliRunner().invoke(cli, args), "c.yaml: not UTF-8 text")
    assert not (tmp_path / "r").exists()


def test_a_lock_file_that_is_a_link(small_catalogue: Path, tmp_path: Path) -> None:
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / ".lock").symlink_to("/etc/passwd")
    result = CliRunner().invoke(cli, ["train", "--data", str(small_catalogue), "--out", str(tmp_path / "r")])
    assert_one_line(result, r"\.lock: not a plain file")
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == [".lock"]


def test_features_out_that_is_a_file(small_catalogue: Path, tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    result = CliRunner().invoke(cli, ["features", "--catalogue", str(small_catalogue), "--out", str(tmp_path / "f")])
    assert_one_line(result, "--out is a file")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--users", "0"], "'n_users' must be >= 10"),
        (["--items", "-3"], "'n_items' must be >= 10"),
        (["--mismatch-rate", "1.5"], r"'mismatch_rate' must be in \[0, 1\]"),
    ],
)
def test_bad_generate_options(tmp_path: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, ["data", "generate", "--out", str(tmp_path / "g"), *args])
    assert_one_line(result, message)
    assert not (tmp_path / "g").exists()


def test_generate_never_deletes_a_foreign_folder(tmp_path: Path) -> None:
    (tmp_path / "g").mkdir()
    (tmp_path / "g" / "thesis.tex").write_text("years of work")
    result = CliRunner().invoke(cli, ["data", "generate", "--out", str(tmp_path / "g"), "--users", "20"])
    assert_one_line(result, "is not a generated catalogue")
    assert (tmp_path / "g" / "thesis.tex").read_text() == "years of work"


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 truncated", b"\x80\x02}q\x00."], ids=["empty", "zip", "pickle"])
def test_unreadable_checkpoints_on_every_command(tmp_path: Path, small_catalogue: Path, content: bytes) -> None:
    run = tmp_path / "run"
    assert (
        CliRunner()
        .invoke(
            cli,
            ["-q", "train", "--data", str(small_catalogue), "--set", "epochs=1", "--out", str(run), "--no-progress"],
        )
        .exit_code
        == 0
    )
    (run / "best.pt").write_bytes(content)
    for args in (["evaluate"], ["recommend", "--user", "0"], ["audit"]):
        result = CliRunner().invoke(cli, [args[0], "--run", str(run), *args[1:]])
        assert_one_line(result, "best.pt: ")


def assert_one_line(result, message: str) -> None:
    import re

    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output and "Aborted" not in result.output
    lines = [line for line in result.output.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.output
    assert re.search(message, lines[0]), lines[0]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not json", "metrics.json: not a metrics file"),
        (b"\xff\xfe{}", "metrics.json: not a metrics file"),
        (b'{"model": "bpr", "dataset": "d", "best_epoch": 1, "epochs": 1, "valid": {}}', "metrics.json: lacks test"),
        (b"[1, 2]", "metrics.json: lacks model"),
    ],
    ids=["not json", "not utf-8", "no test", "a list"],
)
def test_report_on_a_broken_metrics_file(tmp_path: Path, small_catalogue: Path, content: bytes, message: str) -> None:
    run = tmp_path / "run"
    args = ["-q", "train", "--data", str(small_catalogue), "--set", "epochs=1", "--out", str(run), "--no-progress"]
    assert CliRunner().invoke(cli, args).exit_code == 0
    (run / "metrics.json").write_bytes(content)
    assert_one_line(CliRunner().invoke(cli, ["report", str(run)]), message)


@pytest.fixture
def bpr_run(tmp_path: Path, small_catalogue: Path) -> Path:
    run = tmp_path / "run"
    args = ["-q", "train", "--data", str(small_catalogue), "--set", "epochs=1", "--out", str(run), "--no-progress"]
    assert CliRunner().invoke(cli, args).exit_code == 0
    return run


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_outputs_never_land_in_a_run_folder(bpr_run: Path, small_catalogue: Path) -> None:
    before = _snapshot(bpr_run)
    cases = [
        (["report", "--html", str(bpr_run / "best.pt"), str(bpr_run)], "inside the run folder"),
        (["report", str(bpr_run), "--screen-plot", str(bpr_run / "screen.png")], "inside the run folder"),
        (["audit", "--run", str(bpr_run), "--out", str(bpr_run / "split.inter")], "inside the run folder"),
        (["probe", "--run", str(bpr_run), "--out", str(bpr_run / "log.csv")], "inside the run folder"),
        (["recommend", "--run", str(bpr_run), "--all", "--out", str(bpr_run / "r.csv")], "inside the run folder"),
        (["explain", "--run", str(bpr_run), "--item", "0", "--out", str(bpr_run / "e.png")], "inside the run folder"),
        (["data", "reduce", str(small_catalogue), "--out", str(bpr_run), "--pca-dim", "4"], "inside the run folder"),
        (["train", "--data", str(small_catalogue), "--out", str(bpr_run / "nested")], "inside the run folder"),
    ]
    for args, message in cases:
        assert_one_line(CliRunner().invoke(cli, args), message)
    assert _snapshot(bpr_run) == before  # not a byte changed, nothing added


def test_outputs_never_land_in_a_dataset_folder(small_catalogue: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    import shutil

    shutil.copytree(small_catalogue, data)
    before = _snapshot(data)
    cases = [
        (["train", "--data", str(data), "--out", str(data / "runs" / "r1")], "inside the dataset folder"),
        (["compare", "--data", str(data), "--models", "bpr", "--seeds", "1", "--out", str(data)], "dataset folder"),
        (["tune", "--model", "bpr", "--data", str(data), "--trials", "1", "--out", str(data / "t")], "dataset folder"),
    ]
    for args, message in cases:
        assert_one_line(CliRunner().invoke(cli, args), message)
    assert _snapshot(data) == before


def test_an_experiment_never_replaces_a_results_file_it_did_not_write(small_catalogue: Path, tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    out.mkdir()
    (out / "results.md").write_text("# my own notes\n")
    args = ["compare", "--data", str(small_catalogue), "--models", "bpr", "--seeds", "1", "--out", str(out)]
    assert_one_line(CliRunner().invoke(cli, [*args, "--set", "epochs=1", "--no-progress"]), "not written by mdrchca")
    assert (out / "results.md").read_text() == "# my own notes\n"
    assert sorted(p.name for p in out.iterdir()) == ["results.md"]


def test_an_experiment_never_replaces_another_experiments_results(small_catalogue: Path, tmp_path: Path) -> None:
    """``ablate`` into ``compare``'s folder would overwrite the comparison's results.md: refused before any run."""
    from mdrchca.experiments.runner import RESULTS_MARK

    out = tmp_path / "cmp"
    out.mkdir()
    comparison = f"{RESULTS_MARK}\n# Comparison\n\n| model | R@20 |\n"
    (out / "results.md").write_text(comparison)
    args = ["ablate", "--model", "mdrchca", "--data", str(small_catalogue), "--seeds", "1", "--out", str(out)]
    result = CliRunner().invoke(cli, [*args, "--set", "epochs=1", "--no-progress"])
    assert_one_line(result, re.escape("holds the results of 'Comparison', which this command ('Ablation of mdrchca')"))
    assert "choose another --out" in result.output
    assert (out / "results.md").read_text() == comparison
    assert sorted(p.name for p in out.iterdir()) == ["results.md"]


@pytest.mark.parametrize(
    ("dim", "message"), [("0", "--pca-dim 0: keep at least one dimension"), ("100000", "--pca-dim 100000: above the")]
)
def test_reduce_checks_every_store_before_writing(small_featured: Path, tmp_path: Path, dim: str, message: str) -> None:
    out = tmp_path / "reduced"
    result = CliRunner().invoke(cli, ["data", "reduce", str(small_featured), "--out", str(out), "--pca-dim", dim])
    assert_one_line(result, message)
    assert not out.exists()

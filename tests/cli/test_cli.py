import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from mdrchca.cli.main import cli


@pytest.fixture(scope="module")
def trained_run(small_catalogue: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("run") / "lightgcn"
    result = CliRunner().invoke(
        cli,
        [
            "-q",
            "train",
            "--model",
            "lightgcn",
            "--data",
            str(small_catalogue),
            "--set",
            "epochs=2",
            "--set",
            "device=cpu",
            "--set",
            "batch_size=512",
            "--out",
            str(run_dir),
            "--no-progress",
        ],
    )
    assert result.exit_code == 0, result.output
    return run_dir


def test_train_writes_the_run_folder(trained_run: Path) -> None:
    for name in ("config.yaml", "log.csv", "best.pt", "metrics.json", "split.inter"):
        assert (trained_run / name).is_file(), name
    metrics = json.loads((trained_run / "metrics.json").read_text())
    assert metrics["model"] == "lightgcn" and metrics["dataset"] == "small" and metrics["epochs"] == 2


def test_evaluate_reproduces_the_trained_metrics(trained_run: Path) -> None:
    result = CliRunner().invoke(cli, ["-q", "evaluate", "--run", str(trained_run)])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    metrics = json.loads((trained_run / "metrics.json").read_text())
    assert out["test"] == pytest.approx(metrics["test"])
    assert out["valid"] == pytest.approx(metrics["valid"])


def test_recommend_one_user_excludes_seen_items(trained_run: Path, small_catalogue: Path) -> None:
    result = CliRunner().invoke(cli, ["-q", "recommend", "--run", str(trained_run), "--user", "4", "--k", "7"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[0] == "userID\trank\titemID\tscore" and len(lines) == 8
    items = [int(line.split("\t")[2]) for line in lines[1:]]
    seen = pd.read_csv(small_catalogue / "small.inter", sep="\t").query("userID == 4").itemID
    assert not set(items) & set(seen)
    scores = [float(line.split("\t")[3]) for line in lines[1:]]
    assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_recommend_all(trained_run: Path, tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"recs{suffix}"
    result = CliRunner().invoke(
        cli, ["-q", "recommend", "--run", str(trained_run), "--all", "--k", "5", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(out) if suffix == ".csv" else pd.read_parquet(out)
    assert list(frame.columns) == ["userID", "rank", "itemID", "score"]
    assert frame.groupby("userID").size().eq(5).all()


def test_unknown_user_is_one_clear_line(trained_run: Path) -> None:
    result = CliRunner().invoke(cli, ["recommend", "--run", str(trained_run), "--user", "123456"])
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0
    assert "unknown user 123456" in result.output and "Traceback" not in result.output


def test_bad_data_is_one_clear_line(tmp_path: Path) -> None:
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "broken.inter").write_text("user\titem\n1\t2\n")
    result = CliRunner().invoke(cli, ["train", "--data", str(folder), "--out", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert "broken.inter: missing column(s) userID, itemID" in result.output
    assert "Traceback" not in result.output


def test_unknown_override_is_one_clear_line(small_catalogue: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["train", "--data", str(small_catalogue), "--set", "epoch=2", "--out", str(tmp_path / "r")]
    )
    assert result.exit_code == 2
    assert "did you mean 'epochs'" in result.output


def test_a_refused_model_option_leaves_no_run_folder(small_catalogue: Path, tmp_path: Path) -> None:
    run = tmp_path / "r"
    result = CliRunner().invoke(
        cli, ["train", "--data", str(small_catalogue), "--set", "edge_dropout=1.0", "--out", str(run)]
    )
    assert result.exit_code == 2
    assert "'edge_dropout' must be in [0, 1), got 1.0" in result.output
    assert not run.exists()


def test_data_stats(small_catalogue: Path) -> None:
    result = CliRunner().invoke(cli, ["data", "stats", str(small_catalogue)])
    assert result.exit_code == 0, result.output
    assert "users: 300" in result.output and "split: given (x_label)" in result.output


def test_every_command_has_help() -> None:
    for args in (
        ["--help"],
        ["train", "--help"],
        ["evaluate", "--help"],
        ["recommend", "--help"],
        ["data", "stats", "--help"],
        ["data", "generate", "--help"],
    ):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0 and "Usage" in result.output


def _cells(row: str) -> list[str]:
    """The cells of one Markdown table row."""
    return [cell.strip() for cell in row.strip().strip("|").split("|")]


def test_report_table(trained_run: Path) -> None:
    result = CliRunner().invoke(cli, ["report", str(trained_run)])
    assert result.exit_code == 0, result.output
    header, rule, row = result.output.strip().splitlines()
    assert "test recall@20" in header and _cells(row)[:3] == ["lightgcn", "lightgcn", "small"]
    metrics = json.loads((trained_run / "metrics.json").read_text())
    assert f"{metrics['test']['recall@20']:.4f}" in row
    assert "valid recall@20" in header and f"{metrics['valid']['recall@20']:.4f}" in row


def test_cold_item_run_is_marked_and_re_evaluates_on_its_own_split(small_catalogue: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "cold"
    args = ["-q", "train", "--model", "lightgcn", "--data", str(small_catalogue), "--out", str(run_dir)]
    settings = ["epochs=2", "device=cpu", "batch_size=512", "split_mode=cold_items"]
    result = CliRunner().invoke(cli, [*args, *(x for s in settings for x in ("--set", s)), "--no-progress"])
    assert result.exit_code == 0, result.output
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["split"] == "cold_items"
    again = CliRunner().invoke(cli, ["-q", "evaluate", "--run", str(run_dir)])
    assert again.exit_code == 0, again.output
    assert json.loads(again.output)["test"] == pytest.approx(metrics["test"])  # same items ranked among new items
    split = pd.read_csv(run_dir / "split.inter", sep="\t")
    assert not set(split.query("x_label > 0").itemID) & set(split.query("x_label == 0").itemID)
    report = CliRunner().invoke(cli, ["report", str(run_dir)])
    assert "| small (cold items) |" in report.output


@pytest.fixture(scope="module")
def mdrchca_run(small_featured: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("mdr") / "run"
    result = CliRunner().invoke(
        cli,
        [
            "-q",
            "train",
            "--model",
            "mdrchca",
            "--data",
            str(small_featured),
            "--set",
            "epochs=1",
            "--set",
            "device=cpu",
            "--set",
            "batch_size=1024",
            "--out",
            str(run_dir),
            "--no-progress",
        ],
    )
    assert result.exit_code == 0, result.output
    return run_dir


def test_explain_draws_a_png(mdrchca_run: Path, tmp_path: Path) -> None:
    from PIL import Image

    out = tmp_path / "item3.png"
    result = CliRunner().invoke(cli, ["explain", "--run", str(mdrchca_run), "--item", "3", "--out", str(out)])
    assert result.exit_code == 0, result.output
    with Image.open(out) as image:
        assert image.size[0] > 300 and image.size[1] > 200
    bad = CliRunner().invoke(cli, ["explain", "--run", str(mdrchca_run), "--item", "99999", "--out", str(out)])
    assert bad.exit_code == 2 and "unknown item 99999" in bad.output


def test_audit_lists_every_item_lowest_first(mdrchca_run: Path, small_featured: Path, tmp_path: Path) -> None:
    out = tmp_path / "audit.csv"
    result = CliRunner().invoke(cli, ["audit", "--run", str(mdrchca_run), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "AUC of low confidence at finding planted mismatches" in result.output  # ground truth was copied
    assert "AUC of low alignment_similarity at finding planted mismatches" in result.output
    frame = pd.read_csv(out)
    assert list(frame.columns[:2]) == ["itemID", "confidence"]
    assert sorted(frame.itemID) == list(range(len(frame)))
    values = frame.agreement.dropna().to_numpy()  # the default ranking
    assert (values[:-1] <= values[1:]).all() and ((values >= -1) & (values <= 1)).all()
    confidence = frame.confidence.dropna().to_numpy()
    assert ((confidence >= 0) & (confidence <= 1)).all()


def test_audit_by_another_column(mdrchca_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "audit.csv"
    result = CliRunner().invoke(
        cli, ["audit", "--run", str(mdrchca_run), "--by", "alignment_similarity", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    values = pd.read_csv(out).alignment_similarity.dropna().to_numpy()
    assert (values[:-1] <= values[1:]).all()


def test_audit_scores_a_run_trained_on_swapped_images(small_featured: Path, tmp_path: Path) -> None:
    """The run's own feature_noise is the ground truth: the audit reports an AUC for every column."""
    run_dir = tmp_path / "swapped"
    noise = ["feature_noise=swap", "noise_level=0.2", "noise_modality=image", "noise_seed=3"]
    args = ["-q", "train", "--model", "mdrchca", "--data", str(small_featured), "--out", str(run_dir), "--no-progress"]
    for option in ["epochs=1", "device=cpu", "batch_size=1024", *noise]:
        args += ["--set", option]
    assert (trained := CliRunner().invoke(cli, args)).exit_code == 0, trained.output
    result = CliRunner().invoke(cli, ["audit", "--run", str(run_dir), "--by", "agreement"])
    assert result.exit_code == 0, result.output
    found = "at finding the items whose image the run's feature_noise corrupted"
    for column in ("confidence", "agreement"):
        line = next(x for x in result.output.splitlines() if x.startswith(f"AUC of low {column} {found}"))
        assert 0.0 <= float(line.rsplit(" ", 1)[1]) <= 1.0
    assert "planted mismatches" not in result.output  # the run's noise, not the catalogue's own plants


def test_report_draws_the_confidence_screen(mdrchca_run: Path, trained_run: Path, tmp_path: Path) -> None:
    from PIL import Image

    out = tmp_path / "figures" / "screen.png"
    out.parent.mkdir()
    result = CliRunner().invoke(cli, ["report", str(mdrchca_run), "--screen-plot", str(out)])
    assert result.exit_code == 0, result.output
    with Image.open(out) as image:
        assert image.size[0] > 600
    assert out.with_suffix(".svg").read_text().lstrip().startswith("<?xml")
    refused = CliRunner().invoke(cli, ["report", str(trained_run), "--screen-plot", str(out)])
    assert refused.exit_code == 2 and "no confidence-screen columns" in refused.output


def test_audit_needs_a_mdrchca_run(trained_run: Path) -> None:
    result = CliRunner().invoke(cli, ["audit", "--run", str(trained_run)])
    assert result.exit_code == 2 and "no cross-modal confidence" in result.output


def test_data_reduce(small_featured: Path, tmp_path: Path) -> None:
    out = tmp_path / "reduced"
    result = CliRunner().invoke(cli, ["data", "reduce", str(small_featured), "--out", str(out), "--pca-dim", "4"])
    assert result.exit_code == 0, result.output
    from mdrchca.data import load_dataset

    data = load_dataset(out)
    assert data.features["text"].dim == 4 and data.features["image"].dim == 4
    assert data.n_users == load_dataset(small_featured).n_users


def test_evaluate_breakdown(trained_run: Path) -> None:
    result = CliRunner().invoke(cli, ["-q", "evaluate", "--run", str(trained_run), "--breakdown"])
    assert result.exit_code == 0, result.output
    headers = [_cells(line) for line in result.output.splitlines() if line.startswith("|") and "interactions" in line]
    assert ["train interactions", "users", "recall@20", "ndcg@20"] in headers
    assert ["item train interactions", "pairs", "hit@20"] in headers


def test_report_shows_the_confidence_screen_at_the_best_epoch(mdrchca_run: Path, trained_run: Path) -> None:
    result = CliRunner().invoke(cli, ["report", "--diagnostics", str(mdrchca_run), str(trained_run)])
    assert result.exit_code == 0, result.output
    header, _, mdrchca_row, lightgcn_row = result.output.strip().splitlines()
    assert "pos_share" in header and "theta_pos" in header and "loss_conf" in header
    log = pd.read_csv(mdrchca_run / "log.csv")
    best = json.loads((mdrchca_run / "metrics.json").read_text())["best_epoch"]
    assert f"{log.loc[log.epoch == best, 'theta_pos'].iloc[0]:.4f}" in mdrchca_row
    assert _cells(lightgcn_row)[-6:] == ["—"] * 6  # LightGCN has no screen


def test_probe_prints_every_mechanism_and_writes_its_rows(mdrchca_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "probe.csv"
    result = CliRunner().invoke(cli, ["probe", "--run", str(mdrchca_run), "--draws", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "| trained " in result.output and "dense alignment (variant A's path)" in result.output
    frame = pd.read_csv(out)
    assert frame["probe"].iloc[0] == "trained" and len(frame) >= 6
    assert frame.loc[frame["probe"] == "all content off (f = 0)", "content_cosine"].iloc[0] == 0.0


def test_probe_needs_a_mdrchca_run(trained_run: Path) -> None:
    result = CliRunner().invoke(cli, ["probe", "--run", str(trained_run)])
    assert result.exit_code == 2 and "no mechanisms to probe" in result.output

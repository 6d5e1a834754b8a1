"""The experiment commands end to end on a small catalogue: files, figures, the HTML page in a real browser."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image

from mdrchca.cli.main import cli

COMMON = ["--seeds", "2", "--workers", "2", "--threads", "1", "--no-progress", "--set", "epochs=2"]


def _invoke(args: list[str]) -> str:
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def experiments(vector_catalogue: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("experiments")
    data = str(vector_catalogue)
    _invoke(["compare", "--data", data, "--models", "lightgcn,vbpr,mdrchca", "--out", str(root / "compare"), *COMMON])
    _invoke(
        ["sweep", "--data", data, "--param", "k_r=1,2", "--param", "tau=0.1,0.5", "--out", str(root / "sweep"), *COMMON]
    )
    _invoke(["ablate", "--data", data, "--out", str(root / "ablate"), *COMMON])
    _invoke(
        [
            "robustness",
            "--data",
            data,
            "--models",
            "lightgcn,vbpr",
            "--levels",
            "0,0.5",
            "--out",
            str(root / "robustness"),
            *COMMON,
        ]
    )
    return {name: root / name for name in ("compare", "sweep", "ablate", "robustness")}


def test_compare_writes_one_row_per_run_and_the_paper_table(experiments: dict[str, Path]) -> None:
    out = experiments["compare"]
    frame = pd.read_csv(out / "results.csv")
    assert len(frame) == 6 and set(frame["model"]) == {"lightgcn", "vbpr", "mdrchca"}
    assert sorted(frame["seed"].unique()) == [999, 1000]
    for run in frame["run"]:
        assert (out / run / "test_per_user.csv").is_file()
    markdown = (out / "results.md").read_text()
    assert "Made by: `mdrchca compare" in markdown and "| Improv. |" in markdown and "Wilcoxon" in markdown
    assert "Validation (what selection saw)" in markdown
    assert "Settings: each model's defaults, with `epochs=2`." in markdown  # the --set shared by every run
    assert "- code: " in markdown and "- data vectors:" in markdown
    assert r"\toprule" in (out / "results.tex").read_text()
    breakdown = pd.read_csv(out / "breakdown.csv")
    assert set(breakdown["by"]) == {"user train interactions", "item train interactions"}


def test_sweep_ablate_and_robustness_write_their_figures(experiments: dict[str, Path]) -> None:
    expected = {
        "sweep": ["sweep-k_r", "sweep-tau"],
        "ablate": ["ablation"],
        "robustness": ["robustness-swap"],
    }
    for name, stems in expected.items():
        for stem in stems:
            png = experiments[name] / f"{stem}.png"
            with Image.open(png) as image:
                assert image.size[0] > 200 and image.size[1] > 100
            assert (experiments[name] / f"{stem}.svg").read_text().lstrip().startswith("<?xml")
    sweep = pd.read_csv(experiments["sweep"] / "results.csv")
    points = sweep.groupby(["param", "value"]).size().to_dict()
    assert points == {("k_r", 1.0): 2, ("k_r", 2.0): 2, ("tau", 0.1): 2, ("tau", 0.5): 2}, "one parameter at a time"
    ablation = pd.read_csv(experiments["ablate"] / "results.csv")
    assert set(ablation["variant"]) == {"MDR-CHCA", "A: dense alignment", "B: no confidence screen"}
    assert "| MDR-CHCA | B: no confidence screen |" in (experiments["ablate"] / "results.md").read_text()
    robust = (experiments["robustness"] / "results.md").read_text()
    assert "relative drop" in robust
    for level in ("0", "0.5"):  # every level gets its paired tests of the first model against the others
        assert f"At level {level}, lightgcn against each other model, paired tests" in robust
    assert robust.count("| lightgcn | vbpr |") == 2


def test_a_rerun_reuses_every_finished_run(experiments: dict[str, Path], vector_catalogue: Path) -> None:
    before = (experiments["ablate"] / "results.csv").read_text()
    logs = len(list((experiments["ablate"] / "logs").glob("*.log")))
    _invoke(["ablate", "--data", str(vector_catalogue), "--out", str(experiments["ablate"]), *COMMON])
    assert (experiments["ablate"] / "results.csv").read_text() == before
    text = "".join(p.read_text() for p in (experiments["ablate"] / "logs").glob("*.log"))
    assert len(list((experiments["ablate"] / "logs").glob("*.log"))) == logs + 2
    assert text.count("training ") == 6, "the rerun must not train again"


def test_wrong_inputs_fail_with_one_line(vector_catalogue: Path, tmp_path: Path) -> None:
    cases = [
        (["compare", "--data", str(tmp_path / "nope"), "--models", "lightgcn"], "nope"),
        (["compare", "--data", str(vector_catalogue), "--models", "lightgnc"], "lightgcn"),
        (["sweep", "--data", str(vector_catalogue), "--param", "k_r"], "--param"),
        (["robustness", "--data", str(vector_catalogue), "--models", "bpr", "--levels", "0,x"], "--levels"),
    ]
    for args, needle in cases:
        result = CliRunner().invoke(cli, [*args, "--out", str(tmp_path / "o"), "--no-progress"])
        assert result.exit_code == 2, result.output
        lines = [line for line in result.output.splitlines() if line.startswith("error:")]
        assert len(lines) == 1 and needle in lines[0], result.output
        assert not (tmp_path / "o" / "runs").exists()


def test_the_html_report_renders_in_a_real_browser(
    experiments: dict[str, Path], tmp_path: Path, headless_browser
) -> None:
    page = tmp_path / "report.html"
    run = experiments["compare"] / pd.read_csv(experiments["compare"] / "results.csv")["run"].iloc[0]
    _invoke(["report", "--html", str(page), *(str(p) for p in experiments.values()), str(run)])
    text = page.read_text()
    assert "http://" not in text.replace("http://www.w3.org", "") and "https://" not in text, "the page must be offline"
    browser = headless_browser
    browser.get(page.as_uri())
    tables = browser.find_elements("tag name", "table")
    images = browser.find_elements("tag name", "img")
    assert len(tables) >= 5 and len(images) == 4
    for image in images:
        assert browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", image) > 200
    headers = [h.text for h in browser.find_elements("tag name", "h2")]
    assert "Comparison" in headers and "Runs" in headers
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert not errors, json.dumps(errors)
    assert browser.save_screenshot(str(tmp_path / "report.png"))
    with Image.open(tmp_path / "report.png") as shot:
        assert shot.size[0] >= 1000


def test_a_results_file_records_paths_relative_to_where_the_command_ran(tmp_path: Path) -> None:
    from mdrchca.experiments.runner import portable_command

    here = tmp_path / "project"
    command = (
        f"mdrchca compare --data {here}/data/a,{here}/data/b --tuned {here}/tuned --set split_file={here}/s.inter "
        f"--out={here}/cmp --storage sqlite:////elsewhere/grid.db --set 'note=a b'"
    )
    assert portable_command(command, cwd=here) == (
        "mdrchca compare --data data/a,data/b --tuned tuned --set split_file=s.inter --out=cmp "
        "--storage sqlite:////elsewhere/grid.db --set 'note=a b'"
    )
    assert portable_command("mdrchca train --out /srv/runs/x", cwd=here) == "mdrchca train --out /srv/runs/x"
    assert portable_command("mdrchca 'unbalanced", cwd=here) == "mdrchca 'unbalanced"


def test_the_python_api_takes_one_experiment_and_reuses_the_runs_the_command_made(
    experiments: dict[str, Path], vector_catalogue: Path, tmp_path: Path
) -> None:
    import shutil

    from mdrchca.experiments.grid import GridOptions
    from mdrchca.experiments.runner import Experiment, compare

    out = tmp_path / "compare"
    shutil.copytree(experiments["compare"], out)
    experiment = Experiment(
        out=out,
        datasets=[str(vector_catalogue)],
        seeds=[999, 1000],
        overrides=["epochs=2"],
        grid=GridOptions(workers=1, threads=1, progress=False),
    )
    result = compare(experiment, ["lightgcn", "vbpr", "mdrchca"])
    by_cli = pd.read_csv(experiments["compare"] / "results.csv")
    assert not result.failed
    assert sorted(result.frame["run"]) == sorted(by_cli["run"])
    merged = result.frame.merge(by_cli, on="run", suffixes=("", "_cli"))
    assert (merged["test recall@20"] == merged["test recall@20_cli"]).all()


@pytest.mark.parametrize("seeds", [[], [1, 1], [-1], [1.5]])
def test_an_experiment_from_python_checks_its_seeds(seeds: list, tmp_path: Path) -> None:
    from mdrchca.errors import ConfigError
    from mdrchca.experiments.runner import Experiment

    with pytest.raises(ConfigError, match="--seeds"):
        Experiment(out=tmp_path, seeds=seeds)

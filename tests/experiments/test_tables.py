"""Tables and tests over runs, on hand-made runs whose answers are known."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mdrchca.experiments import tables
from mdrchca.training.run_folder import PER_USER_FILE

# per-user test recall@20 of 4 users, per model and seed
PER_USER = {
    "good": {1: [0.5, 0.4, 1.0, 0.2], 2: [0.6, 0.5, 0.9, 0.3], 3: [0.5, 0.6, 1.0, 0.2]},
    "fair": {1: [0.3, 0.4, 0.8, 0.0], 2: [0.4, 0.3, 0.8, 0.1], 3: [0.4, 0.5, 0.7, 0.1]},
    "poor": {1: [0.1, 0.0, 0.5, 0.0], 2: [0.0, 0.1, 0.4, 0.0], 3: [0.2, 0.0, 0.3, 0.1]},
}


@pytest.fixture()
def runs(tmp_path: Path) -> pd.DataFrame:
    rows = []
    for model, seeds in PER_USER.items():
        for seed, values in seeds.items():
            run = Path("runs") / model / str(seed)
            (tmp_path / run).mkdir(parents=True)
            frame = pd.DataFrame({"userID": [0, 1, 2, 3], "recall@20": values, "ndcg@20": np.array(values) / 2})
            frame.to_csv(tmp_path / run / PER_USER_FILE, index=False)
            rows.append(
                {
                    "dataset": "toy",
                    "model": model,
                    "seed": seed,
                    "test recall@20": float(np.mean(values)),
                    "test ndcg@20": float(np.mean(values)) / 2,
                    "test precision@20": float(np.mean(values)) / 10,
                    "run": str(run),
                }
            )
    return pd.DataFrame(rows)


def test_summary_is_the_mean_and_sample_std_over_seeds(runs: pd.DataFrame) -> None:
    summary = tables.summarize(runs, ["dataset", "model"], ["recall@20"]).set_index("model")
    seed_means = [np.mean(v) for v in PER_USER["good"].values()]
    assert summary.loc["good", "recall@20 mean"] == pytest.approx(np.mean(seed_means))
    assert summary.loc["good", "recall@20 std"] == pytest.approx(np.std(seed_means, ddof=1))
    assert summary.loc["good", "seeds"] == 3


def test_paired_tests_are_scipys_on_the_right_pairs(runs: pd.DataFrame, tmp_path: Path) -> None:
    result = tables.compare_models(runs, tmp_path, "toy", "good", "fair", "recall@20")
    diffs = np.concatenate([np.subtract(PER_USER["good"][s], PER_USER["fair"][s]) for s in (1, 2, 3)])
    assert result.users == 12 and result.seeds == 3
    assert result.p_wilcoxon == pytest.approx(stats.wilcoxon(diffs).pvalue)
    means_good = [np.mean(PER_USER["good"][s]) for s in (1, 2, 3)]
    means_fair = [np.mean(PER_USER["fair"][s]) for s in (1, 2, 3)]
    assert result.p_ttest == pytest.approx(stats.ttest_rel(means_good, means_fair).pvalue)
    assert result.improvement == pytest.approx((np.mean(means_good) - np.mean(means_fair)) / np.mean(means_fair) * 100)


def test_a_difference_inside_the_seed_spread_is_called_level() -> None:
    wide = tables.Comparison("d", "recall@20", "a", "b", 0.30, 0.29, 0.02, 0.01, 3, 10, 0.01, 0.02)
    clear = tables.Comparison("d", "recall@20", "a", "b", 0.30, 0.20, 0.02, 0.01, 3, 10, 0.01, 0.02)
    weak = tables.Comparison("d", "recall@20", "a", "b", 0.30, 0.20, 0.02, 0.01, 3, 10, 0.20, 0.02)
    assert wide.level and wide.verdict().startswith("level")
    assert clear.verdict() == "a ahead"
    assert weak.verdict() == "a ahead (not significant at 0.05)"


def test_paper_table_marks_best_and_runner_up_and_gives_the_target_gain(runs: pd.DataFrame, tmp_path: Path) -> None:
    table = tables.paper_table(runs, tmp_path, target="fair")
    assert table.rank("good", "toy", "recall@20") == 1
    assert table.rank("fair", "toy", "recall@20") == 2
    assert table.rank("poor", "toy", "recall@20") == 0
    good = np.mean([np.mean(v) for v in PER_USER["good"].values()])
    fair = np.mean([np.mean(v) for v in PER_USER["fair"].values()])
    assert table.improvement("toy", "recall@20") == pytest.approx((fair - good) / good * 100)
    pairs = {(t.a, t.b) for t in table.tests}
    assert pairs == {("good", "fair"), ("fair", "poor")}  # best vs runner-up, and the target vs every other
    markdown = tables.to_markdown(table)
    assert f"**{good:.4f} ± " in markdown and f"<u>{fair:.4f} ± " in markdown
    assert "| Improv. | " in markdown
    latex = tables.to_latex(table)
    assert rf"\textbf{{{good:.4f}$\pm$" in latex and rf"\underline{{{fair:.4f}$\pm$" in latex
    assert "Wilcoxon" in latex and latex.count(r"\begin{tabular}") == 1


def test_relative_drops_need_a_clean_level_and_a_noisy_one() -> None:
    summary = pd.DataFrame(
        {
            "dataset": ["d"] * 4,
            "model": ["m", "m", "n", "n"],
            "level": [0.0, 0.4, 0.0, 0.4],
            "recall@20 mean": [0.50, 0.40, 0.20, 0.20],
        }
    )
    drops = tables.relative_drops(summary)
    assert drops is not None
    assert drops["relative drop"].tolist() == ["20.0%", "0.0%"]
    assert drops["R@20 at 0.4"].tolist() == [0.40, 0.20]
    assert tables.relative_drops(summary[summary["level"] > 0]) is None  # a grid of 0.4 alone has no clean end
    assert tables.relative_drops(summary[summary["level"] == 0]) is None


def test_a_table_of_one_model_says_there_is_nothing_to_pair(runs: pd.DataFrame, tmp_path: Path) -> None:
    table = tables.paper_table(runs[runs["model"] == "good"], tmp_path, target="good")
    assert table.tests == []
    markdown = tables.to_markdown(table)
    assert "No paired tests: each dataset has one model." in markdown
    assert "Wilcoxon" not in markdown  # no empty table of tests
    assert "| Improv. |" not in markdown

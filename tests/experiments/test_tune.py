"""Tuning on validation with Optuna: same budget, defaults first, resumable, test never ranked."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
import yaml

import mdrchca.models  # noqa: F401  (registers the models)
from mdrchca.config import MODEL_SPECS, Config
from mdrchca.errors import ConfigError
from mdrchca.evaluation.evaluator import Evaluator
from mdrchca.experiments.grid import open_storage
from mdrchca.experiments.plans import compare_plan
from mdrchca.experiments.tune import TuneOptions, best_file, default_params, study_name, tune


def test_every_model_declares_a_search_space_over_its_own_options() -> None:
    for name, spec in MODEL_SPECS.items():
        assert "learning_rate" in spec.search_space, name
        assert len(spec.search_space) >= 2, f"{name} searches only the learning rate"
        config = Config.for_model(name)
        for key in spec.search_space:
            config.get(key)  # every searched key is an option of the model or the trainer


def test_tune_selects_on_validation_resumes_and_feeds_compare(
    small_catalogue: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ranked: list[str] = []
    original = Evaluator.evaluate

    def spy(self, model, split="valid", per_user=False):
        ranked.append(split)
        return original(self, model, split, per_user)

    monkeypatch.setattr(Evaluator, "evaluate", spy)
    out = tmp_path / "tuned"
    first = tune("lightgcn", str(small_catalogue), out, TuneOptions(trials=3, threads=1), ["epochs=2"])
    assert set(ranked) == {"valid"}, "tuning must never rank the test split"
    assert first.finished_trials == 3

    storage = open_storage(f"sqlite:///{out / 'tune.db'}")
    study = optuna.load_study(study_name=study_name("small", "lightgcn"), storage=storage)
    assert study.trials[0].params == default_params("lightgcn"), "the first trial is the model's defaults"
    assert first.best_value == max(t.value for t in study.trials if t.value is not None)

    second = tune("lightgcn", str(small_catalogue), out, TuneOptions(trials=4, threads=1), ["epochs=2"])
    assert second.finished_trials == 4, "running again continues the study up to the budget, not 3 + 4"
    saved = yaml.safe_load(best_file(out, "small", "lightgcn").read_text())
    assert saved["params"] == second.best_params and saved["trials_ended"] == 4

    spec = compare_plan([str(small_catalogue)], ["lightgcn"], [1], ["epochs=2"], tuned=out)[0]
    config = spec.config()
    assert config.train.learning_rate == pytest.approx(second.best_params["learning_rate"])
    with pytest.raises(ConfigError, match="no tuned settings for bpr"):
        compare_plan([str(small_catalogue)], ["bpr"], [1], tuned=out)
    with pytest.raises(ConfigError, match="was run with --set"):
        tune("lightgcn", str(small_catalogue), out, TuneOptions(trials=5, threads=1), ["epochs=3"])
    with pytest.raises(ConfigError, match="search space"):
        tune("lightgcn", str(small_catalogue), tmp_path / "x", TuneOptions(trials=1), ["learning_rate=0.1"])


def test_a_trial_beyond_the_budget_stops_at_once_and_does_not_count(small_catalogue: Path) -> None:
    from mdrchca.experiments.tune import BEYOND_BUDGET, BudgetSpentError, _Objective, budgeted_trials

    study = optuna.create_study(direction="maximize")
    for value in (0.1, 0.3):
        study.add_trial(optuna.trial.create_trial(value=value, params={}, distributions={}))
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL))
    objective = _Objective("lightgcn", str(small_catalogue), ("epochs=1",), 1, trials=2)
    beyond = study.ask()
    with pytest.raises(BudgetSpentError, match="beyond the budget of 2"):
        objective(beyond)
    assert study.trials[beyond.number].user_attrs == {BEYOND_BUDGET: True}, "marked, so the log says 'not run'"
    study.add_trial(optuna.trial.create_trial(value=0.9, params={}, distributions={}))  # ran past the budget
    assert [t.value for t in budgeted_trials(study, 2)] == [0.1, 0.3], "the best is chosen within the budget"


def test_two_workers_start_no_trial_beyond_the_budget(
    small_catalogue: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A worker whose trial ends while the other's running trial fills the budget stops instead of starting
    one more that fails at once (every two-worker tuning did so, with Optuna's traceback in the log)."""
    out = tmp_path / "tuned"
    result = tune("lightgcn", str(small_catalogue), out, TuneOptions(trials=4, workers=2, threads=1), ["epochs=2"])
    assert result.finished_trials == 4
    storage = open_storage(f"sqlite:///{out / 'tune.db'}")
    study = optuna.load_study(study_name=study_name("small", "lightgcn"), storage=storage)
    states = [t.state for t in study.trials]
    assert states.count(optuna.trial.TrialState.FAIL) == 0, states
    assert len(states) == 4, states

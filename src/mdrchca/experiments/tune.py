"""Fair tuning on validation with Optuna: every model gets the same trial budget over its declared search space.

The objective is the validation ``valid_metric`` (R@20 by default) at the trial's best epoch; test is never
computed for model selection. The sampler is TPE with a fixed seed; a median pruner stops a trial whose
validation curve falls below the median of earlier trials at the same epoch (Optuna's pruning on the
per-epoch value the trainer reports). A study lives in an Optuna storage (SQLite ``<out>/tune.db`` by
default, or ``--storage URL``); running the command again continues it until ``trials`` trials have ended,
and ``--workers N`` processes share it.

The best settings are written to ``<out>/<dataset>--<model>.yaml``, which ``mdrchca compare --tuned OUT``
reads.
"""

from __future__ import annotations

import contextlib
import json
import logging
import multiprocessing
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import yaml

from mdrchca.config import AT_LEAST_ONE, NON_NEGATIVE, Config, SearchParam, check_options, model_spec
from mdrchca.data.dataset import dataset_folder
from mdrchca.errors import ConfigError, MdrchcaError
from mdrchca.experiments.grid import GRACE_SECONDS, HEARTBEAT_SECONDS, RunSpec, open_storage
from mdrchca.io import write_text
from mdrchca.training.run_folder import dataset_fingerprint, guard_output

log = logging.getLogger(__name__)


def best_file(out: Path, dataset: str, model: str) -> Path:
    """Where ``tune`` saves the best settings of ``model`` on ``dataset``."""
    return out / f"{dataset}--{model}.yaml"


@dataclass
class TuneOptions:
    """Budget and execution of one tuning study (each a ``mdrchca tune`` option)."""

    trials: Annotated[int, AT_LEAST_ONE] = 20
    """Trials that must end (complete or pruned) in the study; the same number for every model is fair."""
    seed: int = 0
    """Seed of the TPE sampler (with several workers the order of trials, and so the search, still varies)."""
    startup_trials: Annotated[int, NON_NEGATIVE] = 5
    """Trials sampled at random before TPE models the search space, and before any trial is pruned."""
    warmup_epochs: Annotated[int, NON_NEGATIVE] = 5
    """Epochs a trial always trains before it may be pruned."""
    workers: Annotated[int, AT_LEAST_ONE] = 1
    """Local processes working on the study."""
    threads: Annotated[int, NON_NEGATIVE] = 0
    """Torch threads per worker (0: the machine's cores divided among the workers)."""
    storage: str | None = None
    """Database URL of the study (default SQLite ``<out>/tune.db``)."""


@dataclass
class TuneResult:
    """The study's best trial: its validation score, settings and how many trials ended."""

    study: str
    best_value: float
    best_params: dict[str, Any]
    finished_trials: int
    path: Path


class BudgetSpentError(MdrchcaError):
    """A trial started by a parallel worker after the study's budget was taken (it fails at once)."""


BEYOND_BUDGET = "beyond_budget"
"""User attribute of a trial that a parallel worker started after the budget was taken (:class:`BudgetSpentError`)."""


def suggest(trial: Any, name: str, param: SearchParam) -> Any:
    """Draw ``name`` from ``param`` with the trial's sampler."""
    if param.choices:
        return trial.suggest_categorical(name, list(param.choices))
    if param.integer:
        return trial.suggest_int(name, int(param.low), int(param.high), log=param.log)
    return trial.suggest_float(name, float(param.low), float(param.high), log=param.log)


def default_params(model: str, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """The model's default value of each searched option that lies inside its search range."""
    config = Config.load(model, overrides=list(overrides))
    params = {}
    for name, param in model_spec(model).search_space.items():
        value = config.get(name)
        inside = value in param.choices if param.choices else param.low <= value <= param.high
        if inside:
            params[name] = value
    return params


def study_name(dataset: str, model: str) -> str:
    return f"tune--{dataset}--{model}"


@dataclass(frozen=True)
class _Objective:
    """Picklable objective: trains one configuration without a run folder and returns its validation score."""

    model: str
    data: str | None
    overrides: tuple[str, ...]
    threads: int
    trials: int

    def __call__(self, trial: Any) -> float:
        import optuna
        from optuna.trial import TrialState

        from mdrchca.training.api import train

        # A worker starts no trial once the ended and running ones fill the budget (_optimize), but two workers
        # may still start one at the same moment; trial numbers are given out in order by the storage, so the
        # trials beyond the budget are the ones with `trials` unfailed trials before them. They stop at once,
        # marked, and do not count.
        earlier = [
            t for t in trial.study.get_trials(deepcopy=False) if t.number < trial.number and t.state != TrialState.FAIL
        ]
        if len(earlier) >= self.trials:
            trial.set_user_attr(BEYOND_BUDGET, True)
            with contextlib.suppress(RuntimeError):  # raised when called outside study.optimize
                trial.study.stop()
            raise BudgetSpentError(f"trial {trial.number} is beyond the budget of {self.trials} trials")

        space = model_spec(self.model).search_space
        params = {name: suggest(trial, name, param) for name, param in space.items()}
        overrides = [*self.overrides, *(f"{k}={v}" for k, v in params.items()), f"num_threads={self.threads}"]
        if self.data:
            overrides.append(f"data_path={self.data}")
        config = Config.load(self.model, overrides=overrides)

        def report(epoch: int, score: float) -> None:
            trial.report(score, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at epoch {epoch} (valid {score:.4f})")

        run = train(config, out=None, on_evaluation=report, evaluate_test=False)
        trial.set_user_attr("best_epoch", run.metrics["best_epoch"])
        trial.set_user_attr("epochs", run.metrics["epochs"])
        return float(run.metrics["valid"][config.train.valid_metric])


def _log_trial(study: Any, trial: Any) -> None:
    """One line per ended trial: the progress of a tuning study."""
    if trial.user_attrs.get(BEYOND_BUDGET):
        log.info("%s trial %d not run: the budget's trials were already running", study.study_name, trial.number)
        return
    value = "" if trial.value is None else f" valid {trial.value:.4f}"
    log.info("%s trial %d %s%s %s", study.study_name, trial.number, trial.state.name.lower(), value, trial.params)


def _optimize(url: str, name: str, objective: _Objective, trials: int) -> None:
    """One worker: trials until the study has ``trials`` ended ones (complete or pruned)."""
    import optuna
    from optuna.study import MaxTrialsCallback
    from optuna.trial import TrialState

    import mdrchca.models  # noqa: F401  (registers the models in a spawned interpreter)

    if not logging.getLogger().handlers:  # a spawned worker: its trial lines go to stderr like the parent's
        logging.basicConfig(level=logging.INFO, format="%(message)s")

    study = optuna.load_study(study_name=name, storage=open_storage(url, HEARTBEAT_SECONDS, GRACE_SECONDS))
    ended = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))
    if ended >= trials:
        return
    # the running trials count too: a worker whose trial ends while the others' fill the budget stops (if one of
    # them then fails, its own worker runs another)
    budget = MaxTrialsCallback(trials, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING))
    study.optimize(
        objective,
        callbacks=[budget, _log_trial],
        catch=(MdrchcaError,),
        gc_after_trial=True,
    )


def budgeted_trials(study: Any, trials: int) -> list[Any]:
    """The first ``trials`` ended (complete or pruned) trials by number: the budget every model gets, even if
    a study ran more (an earlier version's parallel workers could overshoot by one)."""
    from optuna.trial import TrialState

    ended = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
    return sorted(ended, key=lambda t: t.number)[:trials]


def _check_same_dataset(study: Any, data: str | None, out: Path) -> None:
    """A study is named by the dataset folder's name; continuing one whose dataset had other files (another
    folder of the same name, or re-extracted features) would mix two datasets' trials: refused."""
    if not data:
        return
    folder = dataset_folder(data)
    files = json.dumps(dataset_fingerprint(folder), sort_keys=True)
    recorded = study.user_attrs.get("data_files")
    if recorded is None:
        study.set_user_attr("data_files", files)
        study.set_user_attr("data_path", str(folder.resolve()))
    elif recorded != files:
        raise ConfigError(
            f"{out}: holds a study of {study.user_attrs.get('data_path')}, whose files differ from {folder}'s; "
            "use another --out for this dataset"
        )


def tune(
    model: str,
    data: str | None,
    out: str | Path,
    options: TuneOptions | None = None,
    overrides: Sequence[str] = (),
) -> TuneResult:
    """Tune ``model`` on ``data`` on validation; continue the study if it exists. See the module docstring."""
    from optuna.trial import TrialState

    options = options or TuneOptions()
    check_options(options)
    base, valid_metric = _checked_inputs(model, data, overrides)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out}: --out is a file; choose a folder for the tuning studies")
    guard_output(out, "the tuning studies", itself=True)
    out.mkdir(parents=True, exist_ok=True)
    dataset = RunSpec(model, data, 0).data_name
    name = study_name(dataset, model)
    url = options.storage or f"sqlite:///{(out / 'tune.db').resolve()}"
    study = _open_study(name, url, options, data, out, overrides)
    threads = options.threads or max(1, (os.cpu_count() or 1) // options.workers)
    if all(t.state == TrialState.FAIL for t in study.get_trials(deepcopy=False)):
        # a new study (or one whose every trial failed): its first trial is the model's defaults, so tuning
        # never ends below them
        defaults = default_params(model, base)
        if defaults:
            study.enqueue_trial(defaults)
    _run_trials(url, name, _Objective(model, data, tuple(overrides), threads, options.trials), options)
    ended = budgeted_trials(study, options.trials)
    complete = [t for t in ended if t.state == TrialState.COMPLETE]
    if not complete:
        raise MdrchcaError(f"study {name}: no trial completed; see the log for their errors")
    best = max(complete, key=lambda t: t.value)
    path = best_file(out, dataset, model)
    record = {
        "model": model,
        "dataset": dataset,
        "study": name,
        "objective": f"valid {valid_metric} at the best epoch",
        "best_value": float(best.value),
        "best_trial": best.number,
        "trials_ended": len(ended),
        "trials_pruned": len(ended) - len(complete),
        "overrides": list(overrides),
        "params": dict(best.params),
    }
    write_text(path, yaml.safe_dump(record, sort_keys=False))
    return TuneResult(name, float(best.value), dict(best.params), len(ended), path)


def _checked_inputs(model: str, data: str | None, overrides: Sequence[str]) -> tuple[list[str], str]:
    """The base overrides of every trial and the validation metric tuned; an override of a searched option,
    or any option the config refuses, is one line before anything is written."""
    swept = set(model_spec(model).search_space)
    fixed = sorted(swept & {o.partition("=")[0].strip().split(".")[-1] for o in overrides})
    if fixed:
        raise ConfigError(f"--set {fixed[0]} is part of {model}'s search space; drop it or tune without it")
    base = [*overrides, *([f"data_path={data}"] if data else [])]
    return base, Config.load(model, overrides=base).train.valid_metric


def _open_study(
    name: str, url: str, options: TuneOptions, data: str | None, out: Path, overrides: Sequence[str]
) -> Any:
    """The study ``name`` at ``url`` (created, or continued when it was run on the same dataset with the same
    ``--set``), with its seeded TPE sampler and median pruner."""
    import optuna

    storage = open_storage(url, HEARTBEAT_SECONDS, GRACE_SECONDS)
    sampler = optuna.samplers.TPESampler(seed=options.seed, n_startup_trials=options.startup_trials)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=options.startup_trials, n_warmup_steps=options.warmup_epochs)
    study = optuna.create_study(
        study_name=name, storage=storage, direction="maximize", sampler=sampler, pruner=pruner, load_if_exists=True
    )
    _check_same_dataset(study, data, out)
    recorded = study.user_attrs.get("overrides")
    if recorded is not None and list(recorded) != list(overrides):
        raise ConfigError(
            f"study {name} in {url if options.storage is None else '--storage'} was run with --set {recorded}, not "
            f"{list(overrides)}; use the same settings to continue it, or another --out"
        )
    study.set_user_attr("overrides", list(overrides))
    return study


def _run_trials(url: str, name: str, objective: _Objective, options: TuneOptions) -> None:
    """Run the study's trials in this process, or on ``options.workers`` spawned processes sharing it."""
    if options.workers == 1:
        _optimize(url, name, objective, options.trials)
        return
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=_optimize, args=(url, name, objective, options.trials)) for _ in range(options.workers)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join()

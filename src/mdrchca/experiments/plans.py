"""The paper's experiments as grids of :class:`~mdrchca.experiments.grid.RunSpec`: one builder per command.

- :func:`compare_plan`: every model on every dataset (Table 2), each with its tuned or default settings;
- :func:`sweep_plan`: one parameter at a time around the defaults (figures 4-5);
- :func:`ablation_plan`: the model's registered ablation variants (figure 3);
- :func:`robustness_plan`: models trained on catalogues with a share of corrupted item features.

``overrides`` apply to every run (as ``--set`` does for ``train``); ``seeds`` are the trainer's seeds (model
initialisation, sampling), the split stays the dataset's.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral
from pathlib import Path

import yaml

from mdrchca.config import SEED, model_spec, parse_override
from mdrchca.errors import ConfigError
from mdrchca.experiments.grid import RunSpec

DEFAULT_FIRST_SEED = 999
"""The default seed (MMRec's); ``--seeds N`` runs seeds 999, 1000, ... so the first run of a grid is the run
``mdrchca train`` makes by default."""


def overrides_for(model: str, overrides: Sequence[str], models: Sequence[str]) -> tuple[str, ...]:
    """The ``--set`` values that apply to ``model``: plain ``key=value`` ones apply to every model, and
    ``MODEL:key=value`` ones to that model only (``--set mdrchca:content_grad_items=64`` beside LightGCN)."""
    chosen = []
    for item in overrides:
        head, sep, rest = item.partition(":")
        if sep and "=" not in head:
            if head.strip().lower() not in models:
                raise ConfigError(f"--set {item}: {head} is not one of the models {', '.join(models)}")
            if head.strip().lower() == model:
                chosen.append(rest)
        else:
            chosen.append(item)
    return tuple(chosen)


MAX_SEEDS = 100
"""Most seeds one command accepts per setting: a typo such as ``--seeds 1000000`` would queue a million runs."""


def parse_seeds(text: str | int) -> list[int]:
    """``5`` -> the first five seeds from :data:`DEFAULT_FIRST_SEED`; ``1,2,3`` -> those seeds."""
    raw = str(text).strip()
    try:
        if "," in raw:
            seeds = [int(s) for s in raw.split(",") if s.strip()]
        else:
            seeds = list(range(DEFAULT_FIRST_SEED, DEFAULT_FIRST_SEED + int(raw)))
    except ValueError:
        raise ConfigError(f"--seeds {raw!r}: give a count (5) or a list of seeds (1,2,3)") from None
    return check_seeds(seeds, raw)


def check_seeds(seeds: Sequence[int], shown: str | None = None) -> list[int]:
    """The seeds, each once, at most :data:`MAX_SEEDS`, each a valid training seed; ``shown``: what the user
    typed, for the error line."""
    seeds = list(seeds)
    shown = shown if shown is not None else ",".join(map(str, seeds))
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds {shown!r}: give at least one seed, each once")
    if len(seeds) > MAX_SEEDS:
        raise ConfigError(f"--seeds {shown!r}: {len(seeds)} runs of every setting; give at most {MAX_SEEDS}")
    bad = [s for s in seeds if isinstance(s, bool) or not isinstance(s, Integral) or not SEED.contains(s)]
    if bad:
        raise ConfigError(f"--seeds {shown!r}: seed {bad[0]} is outside {SEED.low:.0f}..{SEED.high:.0f}")
    return [int(s) for s in seeds]


def parse_levels(text: str) -> list[float]:
    """``0,0.1,0.4`` -> the shares of items whose features a robustness grid corrupts (their range is checked
    by :func:`robustness_plan`)."""
    try:
        shares = [float(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"--levels {text!r}: give comma-separated shares, e.g. 0,0.1,0.2,0.4") from None
    return shares


def tuned_overrides(tuned: str | Path | None, dataset: str | None, model: str) -> tuple[str, ...]:
    """The best settings ``mdrchca tune`` saved for ``model`` on ``dataset`` under ``tuned`` (none: ``()``)."""
    if tuned is None:
        return ()
    from mdrchca.experiments.tune import best_file

    name = RunSpec(model, dataset, 0).data_name
    path = best_file(Path(tuned), name, model)
    if not path.is_file():
        raise ConfigError(
            f"--tuned {tuned}: no tuned settings for {model} on {name} "
            f"({path.name}); run mdrchca tune --model {model} --out {tuned} for it, or drop --tuned"
        )
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        what = exc.__class__.__name__
        raise ConfigError(f"{path}: not a tuned-settings file ({what}); run mdrchca tune again") from None
    params = raw.get("params", {}) if isinstance(raw, dict) else None
    if not isinstance(params, dict):
        raise ConfigError(f"{path}: no 'params' mapping; run mdrchca tune again")
    allowed = set(model_spec(model).search_space)
    foreign = sorted(set(params) - allowed)
    if foreign:
        raise ConfigError(
            f"{path}: sets {', '.join(foreign)}, outside {model}'s search space ({', '.join(sorted(allowed))}); "
            "a tuned file carries only searched settings: run mdrchca tune again"
        )
    return tuple(f"{k}={v}" for k, v in sorted(params.items()))


def compare_plan(
    datasets: Sequence[str | None],
    models: Sequence[str],
    seeds: Sequence[int],
    overrides: Sequence[str] = (),
    tuned: str | Path | None = None,
) -> list[RunSpec]:
    """Every model on every dataset with every seed: its tuned settings (if ``tuned``), then ``overrides``."""
    return [
        RunSpec(model, data, seed, (*tuned_overrides(tuned, data, model), *overrides_for(model, overrides, models)))
        for data in datasets
        for model in models
        for seed in seeds
    ]


def parse_param(text: str) -> tuple[str, list[str]]:
    """``k_r=5,10,15`` -> (``k_r``, [``5``, ``10``, ``15``])."""
    name, sep, values = text.partition("=")
    items = [v.strip() for v in values.split(",") if v.strip()]
    if not sep or not name.strip() or not items:
        raise ConfigError(f"--param {text!r}: expected name=value1,value2,... e.g. --param k_r=5,10,15,20")
    return name.strip(), items


def sweep_plan(
    model: str,
    datasets: Sequence[str | None],
    params: Sequence[tuple[str, Sequence[str]]],
    seeds: Sequence[int],
    overrides: Sequence[str] = (),
) -> list[RunSpec]:
    """One parameter at a time: for each ``(name, values)``, the model with ``name=value`` and everything else
    at its defaults (plus ``overrides``)."""
    overrides = overrides_for(model, overrides, [model])
    swept = {name for name, _ in params}
    clash = sorted(swept & {parse_override(o)[0] for o in overrides})
    if clash:
        raise ConfigError(f"--set {clash[0]} is also swept with --param; drop one of them")
    return [
        RunSpec(model, data, seed, (*overrides, f"{name}={value}"), (("param", name), ("value", str(value))))
        for data in datasets
        for name, values in params
        for value in values
        for seed in seeds
    ]


def ablation_plan(
    model: str, datasets: Sequence[str | None], seeds: Sequence[int], overrides: Sequence[str] = ()
) -> list[RunSpec]:
    """The full model and each ablation variant registered on it."""
    overrides = overrides_for(model, overrides, [model])
    variants = model_spec(model).ablations
    if not variants:
        raise ConfigError(f"model {model} registers no ablation variants; use --model mdrchca (or one that does)")
    return [
        RunSpec(model, data, seed, (*overrides, *changes), (("variant", label),))
        for data in datasets
        for label, changes in variants.items()
        for seed in seeds
    ]


NOISE_KINDS = ("swap", "gauss", "drop")


def robustness_plan(
    datasets: Sequence[str | None],
    models: Sequence[str],
    noise: str,
    levels: Sequence[float],
    seeds: Sequence[int],
    modality: str = "image",
    overrides: Sequence[str] = (),
) -> list[RunSpec]:
    """Each model trained on each dataset with ``level`` of its items' ``modality`` features corrupted by
    ``noise``; level 0 is the clean catalogue (one run shared by every kind of noise)."""
    if noise not in NOISE_KINDS:
        raise ConfigError(f"--noise {noise!r}: use one of {', '.join(NOISE_KINDS)}")
    bad = [level for level in levels if not 0 <= level <= 1]
    if bad or not levels:
        raise ConfigError(f"--levels: shares between 0 and 1 are needed, e.g. 0,0.1,0.2,0.4 (got {list(levels)})")
    specs = []
    for data in datasets:
        for model in models:
            for level in levels:
                changes = (
                    ()
                    if level == 0
                    else (f"feature_noise={noise}", f"noise_level={level}", f"noise_modality={modality}")
                )
                own = overrides_for(model, overrides, models)
                for seed in seeds:
                    labels = (("noise", noise), ("level", f"{level:g}"))
                    specs.append(RunSpec(model, data, seed, (*own, *changes), labels))
    return specs

"""Typed configuration: one :class:`Config` object carries every setting through the system.

Every option is documented once, here (data and training) or on the model's own config dataclass
(``mdrchca.models.<name>``). A config is built from defaults, then a YAML file, then ``--set key=value``
overrides. Keys may be flat (``epochs``) or dotted (``train.epochs``); flat keys are unique across sections.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mdrchca.errors import ConfigError


@dataclass
class DataConfig:
    """Where the data comes from and how it is split."""

    data_path: str | None = None
    """Dataset folder (MMRec layout: ``<name>.inter`` plus optional ``<modality>_feat.npy``).
    ``None`` uses the bundled synthetic catalogue, generated on first use."""
    split_mode: str = "user"
    """``user``: the ``.inter`` file's ``x_label`` if it has one, else each user's interactions split at
    random by ``split_ratios`` (MMRec's protocol); ``cold_items``: item cold start, the *items* are split by
    ``split_ratios`` (any ``x_label`` of the folder's file is ignored), so valid and test items are never
    seen in training; negatives are drawn from training items only and each split is ranked among its own
    items (new items against new items)."""
    split_seed: int = 999
    """Seed of the random split (per user, or per item with ``cold_items``); a ``user`` split uses it only
    when the ``.inter`` file has no ``x_label`` column."""
    split_ratios: list[float] = field(default_factory=lambda: [0.8, 0.1, 0.1])
    """Train / valid / test shares of the random split (MMRec's 8:1:1): of each user's interactions, or of
    the items with ``cold_items``."""
    split_file: str | None = None
    """An ``.inter`` file with ``x_label`` whose interactions and split replace the folder's own
    (a run saves its split as ``split.inter``, so it can be evaluated on exactly the same split)."""
    modalities: list[str] | None = None
    """Which modalities to load (``text``, ``image``, ``audio``...); ``None`` loads every one found."""
    feature_level: str = "sequence"
    """``sequence``: token / region features from ``features/<modality>/`` where the folder has them
    (written by ``mdrchca features``), item vectors ``<modality>_feat.npy`` otherwise; ``item``: only the
    item vectors (each item is then one token and one region)."""


@dataclass
class TrainConfig:
    """The shared trainer and the evaluation protocol."""

    epochs: int = 1000
    """Maximum number of training epochs (early stopping usually ends training sooner)."""
    batch_size: int = 2048
    """Training triples (user, positive item, negative item) per step."""
    learning_rate: float = 1e-3
    """Adam's learning rate."""
    weight_decay: float = 0.0
    """Adam's weight decay, on top of the model's own embedding L2 (``reg_weight``); MMRec uses 0."""
    lr_decay: float = 1.0
    """Learning rate of epoch e is ``learning_rate * lr_decay ** ((e - 1) / lr_decay_epochs)`` (MMRec's
    ``learning_rate_scheduler``; 1.0 keeps it constant)."""
    lr_decay_epochs: int = 50
    """Epochs over which the learning rate shrinks by one factor of ``lr_decay``."""
    patience: int = 20
    """Stop after this many evaluations without a strict improvement of ``valid_metric``."""
    valid_metric: str = "recall@20"
    """Validation metric used for early stopping and model selection (``metric@k``)."""
    topk: list[int] = field(default_factory=lambda: [10, 20, 50])
    """Cut-offs K at which every metric is computed."""
    eval_batch_size: int = 4096
    """Users scored per batch in full-ranking evaluation."""
    eval_every: int = 1
    """Evaluate on validation every this many epochs."""
    max_seconds: float = 0.0
    """Stop after the epoch that passes this many seconds of training and evaluation (0: no limit); the
    best validation state so far is then tested, as after early stopping."""
    seed: int = 999
    """Seed of every random generator (model init, sampling, shuffling)."""
    device: str = "auto"
    """``auto`` (CUDA when present, else CPU), ``cpu``, ``cuda`` or ``cuda:N``."""
    num_threads: int = 0
    """CPU threads for torch; 0 keeps torch's default. With more than one thread MDR-CHCA's runs differ in the
    last digits from one run to the next (accumulation order); 1 makes CPU reruns bit-identical."""
    deterministic: bool = False
    """Ask torch for deterministic kernels (``torch.use_deterministic_algorithms`` with
    ``CUBLAS_WORKSPACE_CONFIG=:4096:8``; ops without one warn). On the CPU it makes reruns bit-identical with
    several threads, about 12x slower for MDR-CHCA (``num_threads=1`` does the same for less). On CUDA it is
    not enough (measured on an H100, docs/benchmarks.md): no op warns, yet two runs still differ (LightGCN in
    the 9th digit of the loss; MDR-CHCA, whose top-k and threshold choices amplify it, far more)."""


@dataclass
class ModelConfig:
    """Base of every model's hyperparameters; each model subclasses it with its own fields."""

    embedding_size: int = 64
    """Size d of user and item embeddings."""


@dataclass
class Config:
    """The single configuration object: model name, its hyperparameters, data and training settings."""

    model: str = "lightgcn"
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    model_params: ModelConfig = field(default_factory=ModelConfig)

    SECTIONS: typing.ClassVar[tuple[str, ...]] = ("data", "train", "model_params")

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def for_model(cls, model: str) -> Config:
        """Defaults for ``model``, with its own hyperparameter dataclass."""
        from mdrchca.models import get_model_class

        model_cls = get_model_class(model)
        cfg = cls(model=model.lower(), model_params=model_cls.config_class())
        for key, value in model_cls.train_defaults.items():
            set_field(cfg.train, key, value, f"train.{key}")
        return cfg

    @classmethod
    def load(
        cls,
        model: str | None = None,
        config_file: str | Path | None = None,
        overrides: list[str] | tuple[str, ...] = (),
    ) -> Config:
        """Defaults, then ``config_file`` (YAML), then ``key=value`` overrides, in that order."""
        raw: dict[str, Any] = {}
        if config_file is not None:
            path = Path(config_file)
            if not path.is_file():
                raise ConfigError(f"{path}: config file not found; pass an existing YAML file to --config")
            try:
                raw = yaml.safe_load(path.read_text()) or {}
            except yaml.YAMLError as exc:
                raise ConfigError(f"{path}: not valid YAML ({exc.__class__.__name__}); fix the syntax") from None
            if not isinstance(raw, dict):
                raise ConfigError(f"{path}: expected a mapping of settings at the top level")
        name = model or raw.get("model") or "lightgcn"
        cfg = cls.for_model(str(name))
        for key, value in _flatten(raw):
            if key == "model":
                continue
            cfg.set(key, value)
        for item in overrides:
            key, value = parse_override(item)
            cfg.set(key, value)
        return cfg

    # -- access -------------------------------------------------------------------------------
    def valid_keys(self) -> list[str]:
        """Every settable key, flat form."""
        return [f.name for section in self.SECTIONS for f in dataclasses.fields(getattr(self, section))]

    def _locate(self, key: str) -> tuple[Any, str]:
        if "." in key:
            section, name = key.split(".", 1)
            if section in self.SECTIONS and name in {f.name for f in dataclasses.fields(getattr(self, section))}:
                return getattr(self, section), name
        else:
            for section in self.SECTIONS:
                obj = getattr(self, section)
                if key in {f.name for f in dataclasses.fields(obj)}:
                    return obj, key
        candidates = self.valid_keys() + [
            f"{s}.{f.name}" for s in self.SECTIONS for f in dataclasses.fields(getattr(self, s))
        ]
        near = difflib.get_close_matches(key, candidates, n=1, cutoff=0.4)
        hint = f"; did you mean '{near[0]}'?" if near else f"; valid keys: {', '.join(self.valid_keys())}"
        raise ConfigError(f"unknown config key '{key}' for model '{self.model}'{hint}")

    def get(self, key: str) -> Any:
        obj, name = self._locate(key)
        return getattr(obj, name)

    def set(self, key: str, value: Any) -> None:
        """Set one option, checking its type against the dataclass annotation."""
        obj, name = self._locate(key)
        set_field(obj, name, value, key)

    # -- serialisation ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "data": dataclasses.asdict(self.data),
            "train": dataclasses.asdict(self.train),
            "model_params": dataclasses.asdict(self.model_params),
        }

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Config:
        cfg = cls.for_model(raw["model"])
        for key, value in _flatten(raw):
            if key != "model":
                cfg.set(key, value)
        return cfg


def set_field(obj: Any, name: str, value: Any, key: str | None = None) -> None:
    """Set dataclass field ``name`` of ``obj`` to ``value`` converted to its annotated type."""
    hints = typing.get_type_hints(type(obj))
    setattr(obj, name, _coerce(value, hints[name], key or name))


def parse_override(item: str) -> tuple[str, Any]:
    """``"key=value"`` -> (key, value parsed as YAML; an empty value is None)."""
    if "=" not in item:
        raise ConfigError(f"override '{item}' must look like key=value, e.g. --set epochs=2")
    key, text = (part.strip() for part in item.split("=", 1))
    return key, yaml.safe_load(text) if text else None


def apply_overrides(obj: Any, overrides: list[str] | tuple[str, ...]) -> None:
    """Apply ``key=value`` strings (values parsed as YAML) to a single dataclass, with nearest-key errors."""
    names = [f.name for f in dataclasses.fields(obj)]
    for item in overrides:
        key, value = parse_override(item)
        if key not in names:
            near = difflib.get_close_matches(key, names, n=1, cutoff=0.4)
            hint = f"; did you mean '{near[0]}'?" if near else f"; valid keys: {', '.join(names)}"
            raise ConfigError(f"unknown option '{key}'{hint}")
        set_field(obj, key, value, key)


def _flatten(raw: dict[str, Any]) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, value in raw.items():
        if key in Config.SECTIONS and isinstance(value, dict):
            out.extend((f"{key}.{k}", v) for k, v in value.items())
        else:
            out.append((key, value))
    return out


def _coerce(value: Any, hint: Any, key: str) -> Any:
    """Convert ``value`` (parsed YAML) to the annotated type, or raise a ConfigError naming the key."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"bad value for '{key}'")
    if origin in (list, tuple):
        items = value if isinstance(value, (list, tuple)) else [value]
        inner = args[0] if args else Any
        return [_coerce(v, inner, key) for v in items]
    if hint is Any:
        return value
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"'{key}' expects true/false, got {value!r}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"'{key}' expects an integer, got {value!r}")
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"'{key}' expects a number, got {value!r}")
    if hint is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"'{key}' expects a string, got {value!r}")
    return value

"""Typed configuration: one :class:`Config` object carries every setting through the system.

Every option is documented once, here (data and training) or on the model's own config dataclass
(``mdrchca.models.<name>``). A config is built from defaults, then a YAML file, then ``--set key=value``
overrides. Keys may be flat (``epochs``) or dotted (``train.epochs``); flat keys are unique across sections.

Each option's allowed values are declared with its type, where it is defined: ``Literal[...]`` for a choice,
``Annotated[int, AT_LEAST_ONE]`` (a :class:`Range`) for a number, and cross-option rules in the dataclass's
``validate`` method. They are checked when a value is set and again by :meth:`Config.validate`, before a
run writes anything.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import functools
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml

from mdrchca.errors import ConfigError


@dataclass(frozen=True)
class Range:
    """The interval a numeric option (or each element of a list option) must lie in; ``None`` = unbounded.

    Used as type metadata: ``batch_size: Annotated[int, AT_LEAST_ONE] = 2048``. NaN never passes.
    """

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def describe(self) -> str:
        def shown(bound: float) -> str:
            return str(int(bound)) if float(bound).is_integer() else f"{bound:g}"

        if self.low is not None and self.high is not None:
            low, high = shown(self.low), shown(self.high)
            return f"in {'(' if self.low_open else '['}{low}, {high}{')' if self.high_open else ']'}"
        if self.low is not None:
            return f"{'>' if self.low_open else '>='} {shown(self.low)}"
        return f"{'<' if self.high_open else '<='} {shown(self.high)}"

    def contains(self, value: float) -> bool:
        if isinstance(value, float) and math.isnan(value):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return not (self.high is not None and (value >= self.high if self.high_open else value > self.high))

    def check(self, value: Any, key: str) -> None:
        for item in value if isinstance(value, list) else [value]:
            if item is not None and not self.contains(item):
                raise ConfigError(f"'{key}' must be {self.describe()}, got {item!r}")


AT_LEAST_ONE = Range(1)
"""A count or size: 1 or more."""
NON_NEGATIVE = Range(0)
"""A weight, a count that may be zero, a number of seconds."""
POSITIVE = Range(0, low_open=True)
"""A learning rate, a temperature: strictly above zero."""
SHARE = Range(0, 1, high_open=True)
"""A dropout or pruning share: 0 (off) up to, not including, 1."""
UNIT = Range(0, 1)
"""A probability or threshold in [0, 1]."""
EMBEDDING_SIZE = Range(1, 4096)
"""An embedding size: a typo of a few digits more would ask for terabytes."""
SEED = Range(0, 2**32 - 1)
"""A seed: what NumPy's and torch's generators accept, 0 to 2^32 - 1."""

MAX_IMAGE_PIXELS = 89_478_485
"""Largest image (width x height) decoded by default anywhere in the package: Pillow's own bound against
decompression bombs."""


@dataclass
class DataConfig:
    """Where the data comes from and how it is split."""

    data_path: str | None = None
    """Dataset folder (MMRec layout: ``<name>.inter`` plus optional ``<modality>_feat.npy``).
    ``None`` uses the bundled synthetic catalogue, generated on first use."""
    split_mode: Literal["user", "cold_items"] = "user"
    """``user``: the ``.inter`` file's ``x_label`` if it has one, else each user's interactions split at
    random by ``split_ratios`` (MMRec's protocol); ``cold_items``: item cold start, the *items* are split by
    ``split_ratios`` (any ``x_label`` of the folder's file is ignored), so valid and test items are never
    seen in training; negatives are drawn from training items only and each split is ranked among its own
    items (new items against new items)."""
    split_seed: Annotated[int, SEED] = 999
    """Seed of the random split (per user, or per item with ``cold_items``); a ``user`` split uses it only
    when the ``.inter`` file has no ``x_label`` column."""
    split_ratios: Annotated[list[float], UNIT] = field(default_factory=lambda: [0.8, 0.1, 0.1])
    """Train / valid / test shares of the random split (MMRec's 8:1:1): of each user's interactions, or of
    the items with ``cold_items``."""
    split_file: str | None = None
    """An ``.inter`` file with ``x_label`` whose interactions and split replace the folder's own
    (a run saves its split as ``split.inter``, so it can be evaluated on exactly the same split)."""
    modalities: list[str] | None = None
    """Which modalities to load (``text``, ``image``, ``audio``...); ``None`` loads every one found."""
    max_id: Annotated[int, AT_LEAST_ONE] = 100_000_000
    """Largest userID / itemID accepted: ids index dense arrays, so a stray huge id is refused before it asks
    for memory. Raise it for a catalogue with more ids."""
    feature_level: Literal["sequence", "item"] = "sequence"
    """``sequence``: token / region features from ``features/<modality>/`` where the folder has them
    (written by ``mdrchca features``), item vectors ``<modality>_feat.npy`` otherwise; ``item``: only the
    item vectors (each item is then one token and one region)."""

    feature_noise: Literal["none", "swap", "gauss", "drop"] = "none"
    """Corrupt the features of a share of the items at load time (``mdrchca robustness``): ``swap`` rotates
    the chosen items' features among them (each gets another chosen item's tokens / regions), ``gauss`` adds
    Gaussian noise with each dimension's standard deviation over the catalogue, ``drop`` removes the modality
    for them (empty mask, zero vector, as a missing image). Training, validation and test all see the
    corrupted features, as a catalogue with bad content would."""
    noise_level: Annotated[float, UNIT] = 0.0
    """Share of the items whose ``noise_modality`` features ``feature_noise`` corrupts."""
    noise_modality: str = "image"
    """The modality corrupted by ``feature_noise`` (``image``, ``text``, ``audio``...)."""
    noise_seed: Annotated[int, SEED] = 0
    """Seed that draws the corrupted items and the noise."""
    train_keep: Annotated[float, UNIT] = 1.0
    """Sparse-data studies: share of each user's *training* interactions kept (at random, at least
    ``train_keep_min``); validation and test are unchanged. Applied to a fresh split only: with ``split_file``
    (a run's saved ``split.inter`` already holds the thinned training set) the file's split is used as is."""
    train_keep_min: Annotated[int, AT_LEAST_ONE] = 3
    """Fewest training interactions a user keeps under ``train_keep`` (all of them when they have fewer)."""
    train_keep_seed: Annotated[int, SEED] = 0
    """Seed that draws the kept training interactions."""

    def validate(self) -> None:
        ratios = self.split_ratios
        if len(ratios) != 3 or abs(sum(ratios) - 1.0) > 1e-6 or min(ratios[1:]) <= 0:
            raise ConfigError(
                f"'split_ratios' must be three shares train, valid, test summing to 1 with valid and test above 0, "
                f"got {ratios}; e.g. split_ratios=[0.8,0.1,0.1]"
            )


@dataclass
class TrainConfig:
    """The shared trainer and the evaluation protocol."""

    epochs: Annotated[int, AT_LEAST_ONE] = 1000
    """Maximum number of training epochs (early stopping usually ends training sooner)."""
    batch_size: Annotated[int, AT_LEAST_ONE] = 2048
    """Training triples (user, positive item, negative item) per step."""
    learning_rate: Annotated[float, POSITIVE] = 1e-3
    """Adam's learning rate."""
    optimizer_kernel: Literal["fused", "foreach", "loop"] = "fused"
    """How Adam updates the parameters: ``fused`` in one kernel per step (on the CPU and CUDA; ``foreach`` on
    other devices), ``foreach`` by operations over all parameters at once, ``loop`` parameter by parameter
    (torch's CPU default). The same update up to rounding; on one CPU thread over MDR-CHCA's 23 parameters on
    ML-100K a step took 0.24 ms fused against 0.82 ms by loop (docs/benchmarks.md, session 23)."""
    weight_decay: Annotated[float, NON_NEGATIVE] = 0.0
    """Adam's weight decay, on top of the model's own embedding L2 (``reg_weight``); MMRec uses 0."""
    lr_decay: Annotated[float, Range(0, 1, low_open=True)] = 1.0
    """Learning rate of epoch e is ``learning_rate * lr_decay ** ((e - 1) / lr_decay_epochs)`` (MMRec's
    ``learning_rate_scheduler``; 1.0 keeps it constant)."""
    lr_decay_epochs: Annotated[int, AT_LEAST_ONE] = 50
    """Epochs over which the learning rate shrinks by one factor of ``lr_decay``."""
    patience: Annotated[int, AT_LEAST_ONE] = 20
    """Stop after this many evaluations without a strict improvement of ``valid_metric``."""
    valid_metric: str = "recall@20"
    """Validation metric used for early stopping and model selection (``metric@k``)."""
    topk: Annotated[list[int], AT_LEAST_ONE] = field(default_factory=lambda: [10, 20, 50])
    """Cut-offs K at which every metric is computed."""
    eval_batch_size: Annotated[int, AT_LEAST_ONE] = 4096
    """Users scored per batch in full-ranking evaluation."""
    eval_every: Annotated[int, AT_LEAST_ONE] = 1
    """Evaluate on validation every this many epochs."""
    max_seconds: Annotated[float, NON_NEGATIVE] = 0.0
    """Stop after the epoch that passes this many seconds of training and evaluation (0: no limit); the
    best validation state so far is then tested, as after early stopping."""
    seed: Annotated[int, SEED] = 999
    """Seed of every random generator (model init, sampling, shuffling)."""
    device: str = "auto"
    """``auto`` (CUDA when present, else CPU), ``cpu``, ``cuda`` or ``cuda:N``."""
    parallel: Literal["batch", "columns"] = "batch"
    """How one training on several processes (``torchrun``) divides its work. ``batch``: each rank steps on its
    share of every global batch with the whole model, and DDP averages the gradients (every model). ``columns``:
    each rank holds its share of the embedding columns and propagates them over the whole graph for the whole
    batch; one all-reduce of the batch's partial scores per step (models with ``column_parallel``: LightGCN,
    BPR, MDR-CHCA on its default content path). For a loss that is a mean over the batch both train what one
    process trains; MDR-CHCA's L_conf is computed per rank in both. docs/scaling.md compares them."""
    num_threads: Annotated[int, NON_NEGATIVE] = 0
    """CPU threads for torch; 0 keeps torch's default. With more than one thread MDR-CHCA's runs differ in the
    last digits from one run to the next (accumulation order); 1 makes CPU reruns bit-identical."""
    deterministic: bool = False
    """Ask torch for deterministic kernels (``torch.use_deterministic_algorithms`` with
    ``CUBLAS_WORKSPACE_CONFIG=:4096:8``; ops without one warn). On the CPU it makes reruns bit-identical with
    several threads, at a large cost for MDR-CHCA (``num_threads=1`` does the same for less). On CUDA it is
    not enough: no op warns, yet two runs still differ, MDR-CHCA far more than LightGCN since its top-k and
    threshold choices amplify the differences (measured in docs/benchmarks.md)."""

    def validate(self) -> None:
        if not self.topk:
            raise ConfigError("'topk' is empty; give at least one cut-off, e.g. topk=[10,20,50]")
        name, _, k = self.valid_metric.partition("@")
        if name not in ("recall", "ndcg", "precision", "hit") or not k.isdigit() or int(k) not in self.topk:
            raise ConfigError(
                f"'valid_metric' {self.valid_metric!r} is not computed; use metric@K with metric in "
                f"recall/ndcg/precision/hit and K in topk {sorted(self.topk)}"
            )
        device = self.device
        if not (device in ("auto", "cpu", "cuda", "mps") or (device.startswith("cuda:") and device[5:].isdigit())):
            raise ConfigError(f"'device' must be auto, cpu, cuda, cuda:N or mps, got {device!r}")


@dataclass
class ModelConfig:
    """Base of every model's hyperparameters; each model subclasses it with its own fields."""

    embedding_size: Annotated[int, EMBEDDING_SIZE] = 64
    """Size d of user and item embeddings (at most 4096: the field uses 32-512)."""


@dataclass(frozen=True)
class SearchParam:
    """One tunable option of a search space: a float or integer range (``log`` scale optional) or a list of
    ``choices``. Built with :func:`log_range`, :func:`float_range`, :func:`int_range` or :func:`choice`."""

    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False
    choices: tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        if self.choices:
            return
        if self.low is None or self.high is None or not self.low < self.high or (self.log and self.low <= 0):
            raise ValueError(f"a search range needs low < high (and low > 0 on a log scale), got {self}")


def log_range(low: float, high: float) -> SearchParam:
    """A float searched on a log scale between ``low`` and ``high``."""
    return SearchParam(low, high, log=True)


def float_range(low: float, high: float) -> SearchParam:
    """A float searched uniformly between ``low`` and ``high``."""
    return SearchParam(low, high)


def int_range(low: int, high: int) -> SearchParam:
    """An integer from ``low`` to ``high``, both included."""
    return SearchParam(low, high, integer=True)


def choice(*values: Any) -> SearchParam:
    """One of ``values``."""
    return SearchParam(choices=tuple(values))


COMMON_SEARCH_SPACE: dict[str, SearchParam] = {"learning_rate": log_range(1e-4, 1e-2)}
"""Searched for every model, on top of its own ``search_space``: the same trial budget then buys every model
a tuned learning rate."""


@dataclass(frozen=True)
class ModelSpec:
    """What the config layer knows of a model: its hyperparameter dataclass, its trainer defaults, its search
    space for ``mdrchca tune`` (option name -> :class:`SearchParam`) and its ablation variants for ``mdrchca
    ablate`` (label -> overrides; the first is the full model)."""

    config_class: type[ModelConfig]
    train_defaults: dict[str, Any]
    search_space: dict[str, SearchParam] = field(default_factory=dict)
    ablations: dict[str, tuple[str, ...]] = field(default_factory=dict)


MODEL_SPECS: dict[str, ModelSpec] = {}
"""Filled by :func:`mdrchca.models.register` when the models are imported (``mdrchca.models``, or the package's
``mdrchca.Config``): the config layer sits below the models and never imports them."""


def register_model_config(
    name: str,
    config_class: type[ModelConfig],
    train_defaults: dict[str, Any],
    search_space: dict[str, SearchParam] | None = None,
    ablations: dict[str, tuple[str, ...]] | None = None,
) -> None:
    """Make ``name``'s options known to :meth:`Config.for_model` (and its search space and ablations to the
    experiments). Every searched key must be an option of the model or of the trainer."""
    space = {**COMMON_SEARCH_SPACE, **(search_space or {})}
    known = {f.name for f in dataclasses.fields(config_class)} | {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(space) - known)
    if unknown:
        raise ValueError(f"{name}: search space names unknown options {unknown}")
    MODEL_SPECS[name.lower()] = ModelSpec(config_class, dict(train_defaults), space, dict(ablations or {}))


def model_spec(name: str) -> ModelSpec:
    """The registered spec of model ``name`` (case-insensitive), or a one-line error naming the choices."""
    key = name.lower()
    if key in MODEL_SPECS:
        return MODEL_SPECS[key]
    if not MODEL_SPECS:
        raise ConfigError(
            f"unknown model '{name}': no model is registered yet; import mdrchca.models first (or use mdrchca.Config)"
        )
    near = difflib.get_close_matches(key, list(MODEL_SPECS), n=1)
    hint = f"did you mean '{near[0]}'? " if near else ""
    raise ConfigError(f"unknown model '{name}'; {hint}available: {', '.join(sorted(MODEL_SPECS))}")


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
        """Defaults for ``model``, with its own hyperparameter dataclass and trainer defaults (as registered by
        the model's module, see :func:`register_model_config`)."""
        spec = model_spec(model)
        cfg = cls(model=model.lower(), model_params=spec.config_class())
        for key, value in spec.train_defaults.items():
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
                raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            except UnicodeDecodeError:
                raise ConfigError(f"{path}: not UTF-8 text; save the config as UTF-8") from None
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
        return cfg.validate()

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

    def validate(self) -> Config:
        """Check every option of every section (types, ranges, rules across options); returns ``self``."""
        for section in self.SECTIONS:
            check_options(getattr(self, section))
        return self

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


def _field_type(obj: Any, name: str) -> tuple[Any, tuple[Range, ...]]:
    """The annotated type of field ``name`` and the :class:`Range` checks declared with it."""
    return _field_types(type(obj))[name]


@functools.cache
def _field_types(cls: type) -> dict[str, tuple[Any, tuple[Range, ...]]]:
    """Every field's type and ranges, resolved once per dataclass (resolving the string annotations is what
    costs: about 30 ms for MDR-CHCA's config, paid at every check otherwise)."""
    out = {}
    for name, hint in typing.get_type_hints(cls, include_extras=True).items():
        if typing.get_origin(hint) is Annotated:
            out[name] = (hint.__origin__, tuple(m for m in hint.__metadata__ if isinstance(m, Range)))
        else:
            out[name] = (hint, ())
    return out


def set_field(obj: Any, name: str, value: Any, key: str | None = None) -> None:
    """Set dataclass field ``name`` of ``obj`` to ``value`` converted to its annotated type and range-checked."""
    base, ranges = _field_type(obj, name)
    converted = _coerce(value, base, key or name)
    for check in ranges:
        check.check(converted, key or name)
    setattr(obj, name, converted)


def check_options(obj: Any, prefix: str = "") -> None:
    """Check every field of the dataclass ``obj`` against its declared type and range, then its ``validate``
    method (rules across options); raises a :class:`ConfigError` naming the first bad option."""
    for f in dataclasses.fields(obj):
        if f.name.startswith("_"):
            continue
        base, ranges = _field_type(obj, f.name)
        value = getattr(obj, f.name)
        _coerce(value, base, f"{prefix}{f.name}")
        for check in ranges:
            check.check(value, f"{prefix}{f.name}")
    validate = getattr(obj, "validate", None)
    if callable(validate):
        validate()


def parse_override(item: str) -> tuple[str, Any]:
    """``"key=value"`` -> (key, value parsed as YAML; an empty value is None)."""
    if "=" not in item:
        raise ConfigError(f"override '{item}' must look like key=value, e.g. --set epochs=2")
    key, text = (part.strip() for part in item.split("=", 1))
    if not text:
        return key, None
    try:
        return key, yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"--set {key}: its value is not a plain YAML value ({exc.__class__.__name__}); quote a string, "
            "e.g. --set 'key=[1, 2]' or --set key=text"
        ) from None


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
    if origin is Literal:
        if value in args and not isinstance(value, bool):
            return value
        raise ConfigError(f"'{key}' must be one of {', '.join(map(str, args))}, got {value!r}")
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
        number = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str):
            with contextlib.suppress(ValueError):
                number = float(value)
        if number is None:
            raise ConfigError(f"'{key}' expects a number, got {value!r}")
        if not math.isfinite(number):
            raise ConfigError(f"'{key}' must be a finite number, got {value!r}")
        return number
    if hint is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"'{key}' expects a string, got {value!r}")
    return value

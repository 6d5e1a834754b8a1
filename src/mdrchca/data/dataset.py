"""Loading an MMRec dataset folder into a :class:`RecDataset`, with every input checked.

Folder layout (MMRec's): ``<name>.inter``, a TSV with ``userID``, ``itemID`` and optionally ``x_label``
(0/1/2 = train/valid/test), ``rating`` and ``timestamp``; and optional item-level features
``<modality>_feat.npy`` whose row i belongs to item i (``text_feat.npy``, ``image_feat.npy``,
``audio_feat.npy``, ...).
"""

from __future__ import annotations

import logging
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from mdrchca.config import DataConfig
from mdrchca.data.features import ModalityFeatures, load_item_vectors
from mdrchca.data.split import TEST, TRAIN, VALID, cold_item_split, random_split, thin_training
from mdrchca.errors import DataError
from mdrchca.io import write_text

log = logging.getLogger(__name__)

SPLIT_NAMES = {"train": TRAIN, "valid": VALID, "test": TEST}


@dataclass
class RecDataset:
    """Implicit feedback split into train / valid / test, plus frozen item features per modality.

    ``train``, ``valid`` and ``test`` are ``[n, 2]`` int64 arrays of (user, item) pairs.
    """

    name: str
    n_users: int
    n_items: int
    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    features: dict[str, ModalityFeatures] = field(default_factory=dict)
    path: Path | None = None
    notes: dict[str, int] = field(default_factory=dict)
    split_was_given: bool = True
    split_mode: str = "user"
    """``user`` or ``cold_items`` (see ``DataConfig.split_mode``)."""

    def __post_init__(self) -> None:
        self._matrices: dict[str, sp.csr_matrix] = {}

    def candidate_items(self, split: str) -> np.ndarray | None:
        """Items a ``split`` is ranked among: ``None`` = every item (training items of each user masked);
        with ``cold_items``, a boolean mask of the split's own items (new items ranked against new items)."""
        if self.split_mode != "cold_items" or split == "train":
            return None
        mask = np.zeros(self.n_items, dtype=bool)
        mask[getattr(self, split)[:, 1]] = True
        return mask

    def negative_pool(self) -> np.ndarray | None:
        """Items BPR may draw as negatives: ``None`` = every item; with ``cold_items``, the training items
        only (drawing held-out items as negatives would teach the model that new items are bad)."""
        if self.split_mode != "cold_items":
            return None
        return np.unique(self.train[:, 1])

    def matrix(self, split: str = "train") -> sp.csr_matrix:
        """The binary user x item matrix of one split (CSR, float32, cached)."""
        if split not in self._matrices:
            pairs = getattr(self, split)
            data = np.ones(len(pairs), dtype=np.float32)
            self._matrices[split] = sp.csr_matrix(
                (data, (pairs[:, 0], pairs[:, 1])), shape=(self.n_users, self.n_items)
            )
        return self._matrices[split]

    def eval_users(self, split: str) -> np.ndarray:
        """Users with at least one item in ``split`` and one training item (MMRec leaves the rest out)."""
        has_split = np.diff(self.matrix(split).indptr) > 0
        has_train = np.diff(self.matrix("train").indptr) > 0
        return np.flatnonzero(has_split & has_train)

    @property
    def modalities(self) -> list[str]:
        return list(self.features)

    def interactions_frame(self) -> pd.DataFrame:
        """All interactions with their ``x_label``, in MMRec's column names."""
        parts = [
            pd.DataFrame({"userID": p[:, 0], "itemID": p[:, 1], "x_label": label})
            for p, label in ((self.train, TRAIN), (self.valid, VALID), (self.test, TEST))
        ]
        return pd.concat(parts, ignore_index=True).sort_values(["userID", "itemID"], kind="stable")

    def save_split(self, path: Path) -> None:
        """Write the split as an MMRec ``.inter`` file (atomic), so it can be reloaded exactly."""
        write_text(path, self.interactions_frame().to_csv(sep="\t", index=False))

    def summary(self) -> dict[str, float]:
        n_inter = len(self.train) + len(self.valid) + len(self.test)
        return {
            "users": self.n_users,
            "items": self.n_items,
            "interactions": n_inter,
            "train": len(self.train),
            "valid": len(self.valid),
            "test": len(self.test),
            "density": n_inter / max(1, self.n_users * self.n_items),
            **self.notes,
        }

    def describe(self) -> str:
        """What ``mdrchca data stats`` prints: the summary, training interactions per user, items never seen in
        training, where the split came from, and each modality's dimension and lengths."""
        lines = [f"dataset: {self.name} ({self.path})"]
        lines += [f"{k}: {v:.6f}" if isinstance(v, float) else f"{k}: {v}" for k, v in self.summary().items()]
        train_per_user = np.diff(self.matrix("train").indptr)
        lines.append(
            f"train interactions per user: min {train_per_user.min()} "
            f"mean {train_per_user.mean():.1f} max {train_per_user.max()}"
        )
        train_per_item = np.diff(self.matrix("train").tocsc().indptr)
        lines.append(f"items never seen in training: {(train_per_item == 0).sum()}")
        lines.append(f"split: {'given (x_label)' if self.split_was_given else 'random per user'}")
        for name, feats in self.features.items():
            lengths = feats.lengths().float()
            line = f"feature {name}: dim {feats.dim}, length mean {lengths.mean():.1f} max {int(lengths.max())}"
            phrases = feats.phrase_counts()
            if phrases is not None:
                line += f", phrases mean {phrases.float().mean():.1f} max {int(phrases.max())}"
            lines.append(line)
        return "\n".join(lines)


def is_dataset_folder(folder: Path) -> bool:
    """Whether ``folder`` holds a dataset or a raw catalogue: interactions (``*.inter``), a catalogue's
    ``items.tsv``, or a feature store."""
    if not folder.is_dir():
        return False
    return (
        any(folder.glob("*.inter")) or (folder / "items.tsv").is_file() or any(folder.glob("features/*/manifest.json"))
    )


def dataset_folder(path: str | Path) -> Path:
    """The folder of a dataset given as ``--data`` takes it: the folder itself, or the folder of its ``.inter``."""
    path = Path(path)
    return path if path.is_dir() else path.parent


def find_inter_file(path: Path) -> Path:
    """The interactions file of a dataset folder: ``<folder>.inter``, else the only ``*.inter``."""
    if path.is_file():
        return path
    if not path.is_dir():
        raise DataError(f"{path}: dataset folder not found; pass an existing folder to --data")
    named = path / f"{path.name}.inter"
    if named.is_file():
        return named
    candidates = sorted(path.glob("*.inter"))
    if not candidates:
        raise DataError(f"{path}: no *.inter interactions file; add <name>.inter with columns userID, itemID")
    if len(candidates) > 1:
        names = ", ".join(c.name for c in candidates)
        raise DataError(f"{path}: several interactions files ({names}); pass the one to use as --data FILE")
    return candidates[0]


MAX_ID = 100_000_000
"""Largest user or item id taken by default (``DataConfig.max_id``): ids index dense arrays, so an id of
10^12 would ask for terabytes before anything else fails."""

_DIGITS = re.compile(r"^[0-9]+$")


MAX_LINE_BYTES = 1 << 20
"""Longest line a TSV input may have: a row of ids or an item's text is far shorter, and a file of one endless
line (gigabytes of NUL bytes under a valid header, say) is refused before a parser holds it in memory."""


def _scan_lines(source: Path, what: str, block_size: int = 1 << 20) -> None:
    """Stream ``source`` in blocks, in constant memory: no NUL byte anywhere, no line above
    :data:`MAX_LINE_BYTES`."""
    run = 0  # bytes since the last newline
    offset = 0
    with open(source, "rb") as handle:
        while block := handle.read(block_size):
            if b"\x00" in block:
                at = offset + block.index(b"\x00")
                raise DataError(f"{source}: a NUL byte at byte {at}, a binary file; {what} must be a TSV file")
            pieces = block.split(b"\n")
            longest = max([run + len(pieces[0]), *(len(p) for p in pieces[1:-1])]) if len(pieces) > 1 else 0
            run = len(pieces[-1]) if len(pieces) > 1 else run + len(block)
            if max(longest, run) > MAX_LINE_BYTES:
                raise DataError(
                    f"{source}: a line longer than {MAX_LINE_BYTES} bytes (near byte {offset}); {what} must be a "
                    "TSV file of ordinary lines"
                )
            offset += len(block)


def read_tsv(source: Path, what: str) -> pd.DataFrame:
    """Read a UTF-8, tab-separated file with a header into strings, or stop with one line naming the file.

    Refuses what pandas would take silently: a header that names a column twice, a file that is not text.
    """
    if not source.is_file():
        kind = "not a regular file" if source.exists() else "not found"
        raise DataError(f"{source}: {kind}; {what} must be a plain tab-separated text file")
    try:
        with open(source, encoding="utf-8", newline="") as handle:
            header = handle.readline().rstrip("\r\n")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{source}: not UTF-8 text (byte {exc.start} of the first line); save {what} as UTF-8"
        ) from None
    if "\x00" in header:
        raise DataError(f"{source}: a binary file, not tab-separated text; {what} must be a TSV file")
    _scan_lines(source, what)
    names = header.split("\t")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise DataError(f"{source}: the header names column {', '.join(repeated)} twice; keep one of each")
    try:
        with warnings.catch_warnings():
            # a line with more fields than the header would silently become the index (or be cut): refuse it
            warnings.simplefilter("error", pd.errors.ParserWarning)
            return pd.read_csv(source, sep="\t", dtype=str, keep_default_na=False, encoding="utf-8", index_col=False)
    except pd.errors.ParserWarning:
        raise DataError(
            f"{source}: malformed TSV (a line has more fields than the header); every line needs the same "
            "tab-separated columns"
        ) from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{source}: not UTF-8 text (at byte {exc.start}); save {what} as UTF-8") from None
    except pd.errors.ParserError as exc:
        first = str(exc).splitlines()[0]
        raise DataError(f"{source}: malformed TSV ({first}); every line needs the same tab-separated columns") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{source}: file is empty; {what} needs a header line and one line per row") from None
    except ValueError as exc:  # e.g. NUL bytes deeper in the file
        raise DataError(f"{source}: cannot be read as TSV ({str(exc)[:80]}); check the file") from None


def integer_column(frame: pd.DataFrame, column: str, source: Path, max_value: int | None = None) -> np.ndarray:
    """The column's values as int64, each a plain non-negative integer, at most ``max_value``."""
    text = frame[column].str.strip()
    bad = ~text.str.fullmatch(_DIGITS.pattern)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        kind = "labels 0/1/2" if column == "x_label" else "ids 0..n-1 (remap other ids first)"
        raise DataError(
            f"{source}: column {column} has {int(bad.sum())} values that are not non-negative integers "
            f"(first: {frame[column].iloc[row]!r} on line {row + 2}); it must hold {kind}"
        )
    too_long = text.str.len() > 18
    values = np.full(len(text), np.iinfo(np.int64).max, dtype=np.int64)
    values[~too_long.to_numpy()] = text[~too_long].astype(np.int64).to_numpy()
    if max_value is not None and (values > max_value).any():
        row = int(np.flatnonzero(values > max_value)[0])
        raise DataError(
            f"{source}: {column} {frame[column].iloc[row].strip()} on line {row + 2} is above max_id {max_value}; "
            "ids must be 0..n-1 (remap them), or raise max_id if the catalogue really is that large"
        )
    return values


def read_interactions(source: Path, max_id: int = MAX_ID) -> pd.DataFrame:
    """Read and check an ``.inter`` TSV; returns columns userID, itemID and x_label if present."""
    frame = read_tsv(source, "an .inter file")
    missing = [c for c in ("userID", "itemID") if c not in frame.columns]
    if missing:
        raise DataError(
            f"{source}: missing column(s) {', '.join(missing)} (found: {', '.join(map(str, frame.columns))}); "
            "the header must name userID and itemID, tab-separated"
        )
    if frame.empty:
        raise DataError(f"{source}: has a header but no interactions")
    out = pd.DataFrame(
        {
            "userID": integer_column(frame, "userID", source, max_id),
            "itemID": integer_column(frame, "itemID", source, max_id),
        }
    )
    if "x_label" in frame.columns:
        labels = integer_column(frame, "x_label", source)
        if not np.isin(labels, (TRAIN, VALID, TEST)).all():
            row = int(np.flatnonzero(~np.isin(labels, (TRAIN, VALID, TEST)))[0])
            raise DataError(
                f"{source}: x_label must be 0, 1 or 2 (train/valid/test), found {frame['x_label'].iloc[row]!r} "
                f"on line {row + 2}"
            )
        out["x_label"] = labels.astype(np.int8)
    return out


def _load_features(folder: Path, config: DataConfig) -> dict[str, ModalityFeatures]:
    """Every modality of the folder: token / region stores (``features/<m>/``) or ``<m>_feat.npy``."""
    from mdrchca.data.features import load_sequence_features

    if config.feature_level not in ("sequence", "item"):
        raise DataError(f"feature_level must be 'sequence' or 'item', not {config.feature_level!r}")
    item_files = {p.name[: -len("_feat.npy")]: p for p in sorted(folder.glob("*_feat.npy"))}
    stores = {}
    if config.feature_level == "sequence" and (folder / "features").is_dir():
        stores = {p.parent.name: p.parent for p in sorted((folder / "features").glob("*/manifest.json"))}
    found = sorted(set(item_files) | set(stores))
    wanted = found if config.modalities is None else list(config.modalities)
    absent = [m for m in wanted if m not in found]
    if absent:
        raise DataError(
            f"{folder}: no features for modality {', '.join(absent)} "
            f"(expected {', '.join(m + '_feat.npy' for m in absent)} or features/<modality>/); "
            "extract it or drop it from modalities"
        )
    features: dict[str, ModalityFeatures] = {}
    for name in wanted:
        features[name] = (
            load_sequence_features(stores[name], name) if name in stores else load_item_vectors(item_files[name])
        )
    return features


def _corrupt(features: dict[str, ModalityFeatures], config: DataConfig, folder: Path) -> None:
    """Apply ``feature_noise`` to ``noise_modality`` in place of the clean features (robustness studies)."""
    from mdrchca.data.noise import corrupt_features

    name = config.noise_modality
    if name not in features:
        raise DataError(
            f"noise_modality {name!r}: {folder} has no such modality ({', '.join(features) or 'none'}); "
            "set noise_modality to one of them"
        )
    features[name] = corrupt_features(features[name], config.feature_noise, config.noise_level, config.noise_seed)
    log.info("%s: %s", name, features[name].source)


def load_dataset(path: str | Path | None, config: DataConfig | None = None) -> RecDataset:
    """Load an MMRec dataset folder (or the bundled catalogue when ``path`` is None)."""
    config = config or DataConfig()
    if path is None:
        from mdrchca.data.synthetic import bundled_dataset_path

        path = bundled_dataset_path()
    source = find_inter_file(Path(path))
    folder = source.parent
    if config.split_file is not None:
        source = Path(config.split_file)
        if not source.is_file():
            raise DataError(f"{source}: split file not found; point split_file at an existing .inter file")
    frame = read_interactions(source, config.max_id)
    if config.split_file is not None and "x_label" not in frame.columns:
        raise DataError(f"{source}: a split file needs an x_label column (0/1/2 = train/valid/test)")
    notes: dict[str, int] = {}
    duplicated = frame.duplicated(["userID", "itemID"], keep="first")
    if duplicated.any():
        notes["duplicates_dropped"] = int(duplicated.sum())
        log.warning("%s: dropped %d duplicate (userID, itemID) pairs, keeping the first", source, duplicated.sum())
        frame = frame[~duplicated].reset_index(drop=True)

    features = _load_features(folder, config)
    if config.feature_noise != "none":
        _corrupt(features, config, folder)
    n_items = _item_count(frame, features, folder, source)
    n_users = int(frame["userID"].max()) + 1
    split_was_given = _label_split(frame, config, source)
    pairs = frame[["userID", "itemID"]].to_numpy(dtype=np.int64)
    labels = frame["x_label"].to_numpy()
    train, valid, test = (pairs[labels == k] for k in (TRAIN, VALID, TEST))
    if config.train_keep < 1.0 and config.split_file is None:
        before = len(train)
        train = thin_training(train, config.train_keep, config.train_keep_min, config.train_keep_seed)
        notes["train_thinned_from"] = before
        kept = f"{len(train)} of {before} interactions (train_keep={config.train_keep:g})"
        log.info("%s: training thinned to %s", source, kept)
    _check_splits(train, valid, test, config, split_was_given, source)
    dataset = RecDataset(
        name=folder.name,
        n_users=n_users,
        n_items=n_items,
        train=train,
        valid=valid,
        test=test,
        features=features,
        path=folder,
        notes=notes,
        split_was_given=split_was_given,
        split_mode=config.split_mode,
    )
    active = np.zeros(n_users, dtype=bool)
    active[pairs[:, 0]] = True
    no_train_active = int((active & (np.diff(dataset.matrix("train").indptr) == 0)).sum())
    if no_train_active:
        dataset.notes["users_without_train"] = no_train_active
        log.warning("%s: %d users have no training interaction and are left out of evaluation", source, no_train_active)
    return dataset


def _item_count(frame: pd.DataFrame, features: dict[str, ModalityFeatures], folder: Path, source: Path) -> int:
    """Items: the feature files' rows (they must agree and cover every itemID), else the largest itemID + 1."""
    n_items_data = int(frame["itemID"].max()) + 1
    if not features:
        return n_items_data
    rows = {name: f.n_items for name, f in features.items()}
    if len(set(rows.values())) > 1:
        listing = ", ".join(f"{n}_feat.npy={r}" for n, r in rows.items())
        raise DataError(
            f"{folder}: feature files disagree on the number of items ({listing}); re-extract them together"
        )
    n_items = next(iter(rows.values()))
    if n_items_data > n_items:
        name = next(iter(rows))
        raise DataError(
            f"{source}: itemID {n_items_data - 1} is out of range of {name}_feat.npy's {n_items} rows; "
            "every item needs a feature row (row i = item i)"
        )
    return n_items


def _label_split(frame: pd.DataFrame, config: DataConfig, source: Path) -> bool:
    """Give ``frame`` an ``x_label`` column (the file's, or a random split per user or per item); whether the
    file's labels were kept."""
    if config.split_mode not in ("user", "cold_items"):
        raise DataError(f"split_mode must be 'user' or 'cold_items', not {config.split_mode!r}")
    split_was_given = "x_label" in frame.columns
    if config.split_mode == "cold_items" and config.split_file is None:
        if split_was_given:
            log.info("%s: split_mode=cold_items, the file's x_label is ignored", source)
        frame["x_label"] = cold_item_split(frame["itemID"].to_numpy(), config.split_ratios, config.split_seed)
        log.info("%s: items split train / valid / test at random (seed %d): item cold start", source, config.split_seed)
        return False
    if not split_was_given:
        frame["x_label"] = random_split(frame["userID"].to_numpy(), config.split_ratios, config.split_seed)
        log.info("%s: no x_label column, split per user at random (seed %d)", source, config.split_seed)
    return split_was_given


def _check_splits(
    train: np.ndarray, valid: np.ndarray, test: np.ndarray, config: DataConfig, split_was_given: bool, source: Path
) -> None:
    """Refuse an empty validation or test split, and a cold-start split file whose held-out items were seen in
    training (a fresh cold split holds by construction)."""
    for name, split in (("valid", valid), ("test", test)):
        if len(split) == 0:
            fix = (
                f"label some interactions x_label={SPLIT_NAMES[name]} or drop the x_label column to split at random"
                if split_was_given
                else "the random split left it empty: every user has fewer than 3 interactions; add interactions"
            )
            raise DataError(f"{source}: the {name} split is empty; {fix}")
    if config.split_mode == "cold_items" and config.split_file is not None:
        seen = np.isin(np.r_[valid[:, 1], test[:, 1]], train[:, 1])
        if seen.any():
            raise DataError(
                f"{source}: not an item cold-start split ({int(seen.sum())} valid / test interactions are with items "
                "seen in training); drop split_file to split the items at random, or use split_mode=user"
            )

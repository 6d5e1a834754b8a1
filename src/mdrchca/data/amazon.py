"""The Amazon review datasets (McAuley et al.) from their public files to a raw catalogue, with MMRec's rules.

Three public layouts are read, gzip-compressed or plain, streamed line by line (a 10 GB file never sits in
memory; only the ids, ratings and timestamps are kept, as integer codes):

- 2014: ``reviews_<Category>_5.json.gz`` (JSON lines) and ``meta_<Category>.json.gz``, whose lines are Python
  literals, read with :func:`ast.literal_eval` (literals only: nothing is evaluated);
- 2018: ``<Category>_5.json.gz`` and ``meta_<Category>.json.gz``, JSON lines;
- 2023: ``<Category>.jsonl`` and ``meta_<Category>.jsonl``, JSON lines keyed by ``user_id`` / ``parent_asin``.

MMRec's preprocessing (``0rating2inter`` and ``1splitting``), and what differs here, is written in
docs/data.md: exact duplicates (user, item, time) are dropped, users and items are filtered to the k-core
iteratively, ids are numbered by first appearance (or taken from MMRec's mapping files), and each user's
interactions are split at random, n-2/1/1 under 10 interactions and 8:1:1 from 10 up (seeded here; MMRec's
notebook shuffles without a seed, so only its published ``.inter`` reproduces its split: pass it as
``inter``).
"""

from __future__ import annotations

import ast
import gzip
import html
import io
import json
import logging
import re
import zlib
from array import array
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from mdrchca.data.dataset import integer_column, read_interactions, read_tsv
from mdrchca.data.split import random_split
from mdrchca.errors import DataError
from mdrchca.io import atomic_folder

log = logging.getLogger(__name__)

MAX_BAD_SHARE = 0.01
MAX_BAD_LINES = 10
"""A file with more unreadable lines than both of these (a share, and a count for small files) is refused;
below them the lines are skipped and counted in the report."""


# -- streaming records ---------------------------------------------------------------------------
def _open_text(path: Path) -> io.TextIOBase:
    if not path.is_file():
        raise DataError(f"{path}: {'not a regular file' if path.exists() else 'not found'}; pass an existing file")
    with open(path, "rb") as probe:
        compressed = probe.read(2) == b"\x1f\x8b"
    raw = gzip.open(path, "rb") if compressed else open(path, "rb")  # noqa: SIM115 - closed by the caller
    # utf-8-sig: a byte-order mark at the start is taken off (plain UTF-8 read the same way)
    return io.TextIOWrapper(raw, encoding="utf-8-sig", errors="strict", newline="\n")


@dataclass
class ReadCounts:
    """What one file's stream saw: lines, records, and lines skipped because they were not records."""

    lines: int = 0
    records: int = 0
    skipped: int = 0
    first_skipped: int | None = None
    literal_lines: int = 0


def iter_records(
    path: Path, counts: ReadCounts, progress: bool = False, keep: Callable[[str], bool] | None = None
) -> Iterator[dict[str, Any]]:
    """Each line of ``path`` as a dict: JSON, else a Python literal (2014 metadata); other lines are counted as
    skipped. With ``keep``, a line for which it is False is passed over unparsed (a cheap pre-filter on the raw
    text). A truncated or corrupt gzip stream, or text that is not UTF-8, stops with one line."""
    handle = _open_text(path)
    bar = tqdm(unit=" lines", unit_scale=True, desc=path.name, disable=not progress, leave=False, mininterval=1.0)
    prefer_literal = False
    try:
        for line in handle:
            counts.lines += 1
            if counts.lines % 65536 == 0:
                bar.update(65536)
            text = line.strip()
            if not text or (keep is not None and not keep(text)):
                continue
            record = _parse(text, prefer_literal)
            if record is None:
                counts.skipped += 1
                counts.first_skipped = counts.first_skipped or counts.lines
                continue
            if text.startswith("{'"):
                prefer_literal = True  # a 2014 metadata file: skip the doomed JSON attempt from now on
                counts.literal_lines += 1
            counts.records += 1
            yield record
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise DataError(
            f"{path}: the gzip stream is truncated or corrupt after line {counts.lines} ({exc.__class__.__name__}); "
            "download the file again"
        ) from None
    except UnicodeDecodeError:
        raise DataError(
            f"{path}: line {counts.lines + 1} is not UTF-8 text; is this a review or metadata file?"
        ) from None
    finally:
        bar.close()
        handle.close()
    if counts.skipped > max(MAX_BAD_LINES, MAX_BAD_SHARE * counts.lines):
        raise DataError(
            f"{path}: {counts.skipped} of {counts.lines} lines are neither JSON nor a Python literal (first: line "
            f"{counts.first_skipped}); is this an Amazon review or metadata file?"
        )


def _parse(text: str, prefer_literal: bool) -> dict[str, Any] | None:
    attempts = (_literal, _json) if prefer_literal else (_json, _literal)
    for attempt in attempts:
        value = attempt(text)
        if isinstance(value, dict):
            return value
    return None


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return None


def _literal(text: str) -> Any:
    try:
        return ast.literal_eval(text)  # literals only (strings, numbers, lists, dicts): never calls anything
    except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
        return None


# -- reviews -------------------------------------------------------------------------------------
def review_fields(record: dict[str, Any]) -> tuple[str, str, float, int] | None:
    """(user, item, rating, unix seconds) of a review in any of the three layouts; ``None`` if it lacks ids."""
    user = record.get("reviewerID", record.get("user_id"))
    item = record.get("asin") if "reviewerID" in record else record.get("parent_asin", record.get("asin"))
    if not isinstance(user, str) or not isinstance(item, str) or not user or not item:
        return None
    rating = record.get("overall", record.get("rating", 0.0))
    when = record.get("unixReviewTime")
    if when is None and "timestamp" in record:  # 2023: milliseconds
        when = int(record["timestamp"]) // 1000 if isinstance(record["timestamp"], (int, float)) else 0
    try:
        return user, item, float(rating), int(when or 0)
    except (TypeError, ValueError):
        return user, item, 0.0, 0


@dataclass
class Reviews:
    """Interactions as integer codes into ``users`` / ``items`` (first-appearance order)."""

    user_codes: np.ndarray
    item_codes: np.ndarray
    ratings: np.ndarray
    timestamps: np.ndarray
    users: list[str]
    items: list[str]
    counts: ReadCounts = field(default_factory=ReadCounts)
    without_ids: int = 0


def read_reviews(path: Path, progress: bool = False) -> Reviews:
    """Stream a reviews file into integer-coded arrays (strings are interned once per distinct id)."""
    counts = ReadCounts()
    user_index: dict[str, int] = {}
    item_index: dict[str, int] = {}
    users, items = array("q"), array("q")
    ratings, times = array("f"), array("q")
    without_ids = 0
    for record in iter_records(path, counts, progress):
        fields = review_fields(record)
        if fields is None:
            without_ids += 1
            continue
        user, item, rating, when = fields
        users.append(user_index.setdefault(user, len(user_index)))
        items.append(item_index.setdefault(item, len(item_index)))
        ratings.append(rating)
        times.append(when)
    if not users:
        raise DataError(f"{path}: no review with a reviewer and an item id; is this an Amazon reviews file?")
    return Reviews(
        np.frombuffer(users, dtype=np.int64).copy(),
        np.frombuffer(items, dtype=np.int64).copy(),
        np.frombuffer(ratings, dtype=np.float32).copy(),
        np.frombuffer(times, dtype=np.int64).copy(),
        list(user_index),
        list(item_index),
        counts,
        without_ids,
    )


def k_core(users: np.ndarray, items: np.ndarray, k: int) -> tuple[np.ndarray, int]:
    """Boolean mask of the interactions left by MMRec's iterative filter: drop every user and every item with
    fewer than ``k`` interactions, recount, repeat until none is dropped. Returns (mask, rounds)."""
    keep = np.ones(len(users), dtype=bool)
    rounds = 0
    while k > 0:
        user_count = np.bincount(users[keep], minlength=int(users.max()) + 1)
        item_count = np.bincount(items[keep], minlength=int(items.max()) + 1)
        drop = keep & ((user_count[users] < k) | (item_count[items] < k))
        if not drop.any():
            break
        keep &= ~drop
        rounds += 1
    return keep, rounds


# -- metadata ------------------------------------------------------------------------------------
def _text(value: Any) -> str:
    """A field as one line of plain text: lists joined, HTML entities decoded (``&amp;`` is ``&`` to a text
    encoder), whitespace runs (tabs and newlines would break the TSV) made one space."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return " ".join(_text(v) for v in value if _text(v))
    return " ".join(html.unescape(str(value)).split())


def meta_fields(record: dict[str, Any]) -> tuple[str, dict[str, str]] | None:
    """(asin, {title, description, brand, categories, image_url}) of a metadata record in any layout."""
    asin = record.get("parent_asin", record.get("asin"))
    if not isinstance(asin, str) or not asin:
        return None
    categories = record.get("categories", record.get("category", []))
    if categories and isinstance(categories, list) and all(isinstance(c, list) for c in categories):
        categories = [c for group in categories for c in group]  # 2014: a list of category paths
    image = record.get("imUrl") or ""
    if not image:
        urls = record.get("imageURLHighRes") or record.get("imageURL") or []
        if isinstance(urls, list) and urls:
            image = urls[0]
    if not image and isinstance(record.get("images"), list) and record["images"]:  # 2023
        first = record["images"][0]
        if isinstance(first, dict):
            image = first.get("hi_res") or first.get("large") or first.get("thumb") or ""
    brand = record.get("brand") or record.get("store") or ""
    return asin, {
        "title": _text(record.get("title")),
        "description": _text([record.get("description"), record.get("features")]),  # 2023: bullet points too
        "brand": _text(brand),
        "categories": _text(" > ".join(_text(c) for c in categories) if isinstance(categories, list) else categories),
        "image_url": _text(image) if isinstance(image, str) else "",
    }


_ASIN = re.compile(r"""["']asin["']\s*:\s*["']([^"']+)["']""")
_PARENT_ASIN = re.compile(r"""["']parent_asin["']\s*:\s*["']([^"']+)["']""")


def read_meta(path: Path, wanted: set[str], progress: bool = False) -> tuple[dict[str, dict[str, str]], ReadCounts]:
    """Metadata of the ``wanted`` items only (the file covers the whole category). A line whose raw text names
    an ASIN outside ``wanted`` is passed over without parsing, which makes a category's file cheap to scan."""
    counts = ReadCounts()
    out: dict[str, dict[str, str]] = {}

    def keep(text: str) -> bool:
        found = _PARENT_ASIN.search(text) or _ASIN.search(text)
        return found is None or found.group(1) in wanted

    for record in iter_records(path, counts, progress, keep):
        fields = meta_fields(record)
        if fields is not None and fields[0] in wanted and fields[0] not in out:
            out[fields[0]] = fields[1]
    return out, counts


# -- MMRec's mapping files -----------------------------------------------------------------------
def read_mapping(path: Path, key: str, value: str) -> dict[str, int]:
    """An MMRec mapping file (TSV with header ``key``, ``value``), checked: ids unique and 0..n-1."""
    frame = read_tsv(path, "an MMRec id mapping file")
    if key not in frame.columns or value not in frame.columns:
        raise DataError(f"{path}: needs the columns {key} and {value} (found: {', '.join(frame.columns)})")
    ids = integer_column(frame, value, path)
    if sorted(ids.tolist()) != list(range(len(ids))) or frame[key].duplicated().any():
        raise DataError(f"{path}: {value} must number each {key} once, 0..{len(ids) - 1}; is this MMRec's file?")
    return dict(zip(frame[key].tolist(), ids.tolist(), strict=True))


# -- the conversion ------------------------------------------------------------------------------
@dataclass
class ConversionReport:
    """Counts of every step, written as ``conversion.json`` beside the catalogue."""

    reviews_file: str
    meta_file: str
    lines: int = 0
    reviews: int = 0
    skipped_lines: int = 0
    reviews_without_ids: int = 0
    exact_duplicates_dropped: int = 0
    k_core: int = 5
    k_core_rounds: int = 0
    k_core_dropped: int = 0
    repeated_pairs_dropped: int = 0
    users: int = 0
    items: int = 0
    interactions: int = 0
    split: str = ""
    meta_lines: int = 0
    meta_skipped_lines: int = 0
    items_without_meta: int = 0
    items_without_image_url: int = 0
    ids: str = "first appearance"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def convert_amazon(
    reviews_file: str | Path,
    meta_file: str | Path | None,
    out_dir: str | Path,
    mapping_dir: str | Path | None = None,
    inter_file: str | Path | None = None,
    k: int = 5,
    split_seed: int = 999,
    progress: bool = False,
) -> ConversionReport:
    """Write a raw catalogue (``<name>.inter``, ``items.tsv``, MMRec's two mapping files, ``conversion.json``)
    that ``mdrchca features`` takes as it is, after ``mdrchca data fetch-images`` has fetched the images.

    ``mapping_dir`` takes MMRec's ``u_id_mapping.csv`` / ``i_id_mapping.csv`` so that ids are exactly MMRec's;
    ``inter_file`` takes an existing ``.inter`` whose split is used as it is (its interactions must be exactly
    the converted ones). Nothing is written unless every check passes; the catalogue appears at once.
    """
    reviews_file, out = Path(reviews_file), Path(out_dir)
    meta_file = Path(meta_file) if meta_file is not None else None
    mapping_dir = Path(mapping_dir) if mapping_dir is not None else None
    inter_file = Path(inter_file) if inter_file is not None else None
    given = _check_inputs(meta_file, out, k, inter_file)
    maps = _read_mappings(mapping_dir) if mapping_dir is not None else None

    report = ConversionReport(str(reviews_file), str(meta_file or ""), k_core=k)
    reviews = read_reviews(reviews_file, progress)
    report.lines, report.skipped_lines = reviews.counts.lines, reviews.counts.skipped
    report.reviews, report.reviews_without_ids = len(reviews.user_codes), reviews.without_ids
    frame, reviewed = _filtered_interactions(reviews, k, report, reviews_file)
    user_ids, item_ids, user_order, item_order = _number_ids(frame, reviewed, reviews, maps, mapping_dir, report)
    inter = pd.DataFrame(
        {
            "userID": np.asarray(user_ids, dtype=np.int64),
            "itemID": np.asarray(item_ids, dtype=np.int64),
            "rating": frame["rating"].to_numpy(),
            "timestamp": frame["timestamp"].to_numpy(),
        }
    )
    if given is None:
        inter["x_label"] = random_split(inter["userID"].to_numpy(), (0.8, 0.1, 0.1), split_seed)
        report.split = f"random per user, MMRec's rule, seed {split_seed}"
    else:
        assert inter_file is not None
        inter = _take_split(inter, given, inter_file)
        report.split = f"taken from {inter_file}"
    inter = inter.sort_values(["userID", "itemID"], kind="stable").reset_index(drop=True)
    report.users, report.items, report.interactions = len(user_order), len(item_order), len(inter)
    items = _items_table(meta_file, item_order, progress, report)
    _write_catalogue(out, inter, items, user_order, item_order, report)
    return report


def _check_inputs(meta_file: Path | None, out: Path, k: int, inter_file: Path | None) -> pd.DataFrame | None:
    """Refuse what cannot be converted before anything is read in full; the given split's ``.inter`` if any."""
    if meta_file is not None and not meta_file.is_file():
        raise DataError(
            f"{meta_file}: {'not a regular file' if meta_file.exists() else 'not found'}; pass an existing file"
        )
    if k < 0:
        raise DataError(f"--k-core must be 0 (off) or more, got {k}")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DataError(f"{out}: exists and is not an empty folder; choose a new --out for the catalogue")
    given = read_interactions(inter_file) if inter_file is not None else None
    if given is not None and "x_label" not in given.columns:
        raise DataError(f"{inter_file}: --inter needs an x_label column (0/1/2) to take its split")
    return given


def _read_mappings(mapping_dir: Path) -> tuple[dict[str, int], dict[str, int]]:
    """MMRec's user and item id mappings in ``mapping_dir``."""
    return (
        read_mapping(mapping_dir / "u_id_mapping.csv", "user_id", "userID"),
        read_mapping(mapping_dir / "i_id_mapping.csv", "asin", "itemID"),
    )


def _filtered_interactions(
    reviews: Reviews, k: int, report: ConversionReport, reviews_file: Path
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The interactions left after exact duplicates go, repeated pairs are merged and the k-core is applied;
    and every review left after the duplicates, in file order (what ids are numbered on)."""
    frame = pd.DataFrame(
        {"u": reviews.user_codes, "i": reviews.item_codes, "rating": reviews.ratings, "timestamp": reviews.timestamps}
    )
    exact = frame.duplicated(["u", "i", "timestamp"])
    report.exact_duplicates_dropped = int(exact.sum())
    frame = frame[~exact.to_numpy()].reset_index(drop=True)
    # one interaction per (user, item) pair, the earliest review (a stable sort keeps file order among equal
    # times), before the k-core: merged afterwards, a user or item could end below k (2018 Gift Cards: a user
    # with 4 interactions in a 5-core)
    reviewed = frame
    repeated = frame.sort_values("timestamp", kind="stable").duplicated(["u", "i"]).sort_index()
    report.repeated_pairs_dropped = int(repeated.sum())
    frame = frame[~repeated.to_numpy()].reset_index(drop=True)
    keep, report.k_core_rounds = k_core(frame["u"].to_numpy(), frame["i"].to_numpy(), k)
    report.k_core_dropped = int((~keep).sum())
    frame = frame[keep].reset_index(drop=True)
    if frame.empty:
        raise DataError(f"{reviews_file}: no interaction is left after the {k}-core filter; lower --k-core")
    return frame, reviewed


def _number_ids(
    frame: pd.DataFrame,
    reviewed: pd.DataFrame,
    reviews: Reviews,
    maps: tuple[dict[str, int], dict[str, int]] | None,
    mapping_dir: Path | None,
    report: ConversionReport,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """userID and itemID of each interaction, and the user and item names in id order: MMRec's mapping files'
    ids when given, else numbered by first appearance in the file among the users and items the k-core keeps,
    as MMRec numbers them (whichever review of a repeated pair was kept)."""
    names_u, names_i = np.asarray(reviews.users, dtype=object), np.asarray(reviews.items, dtype=object)
    user_names, item_names = names_u[frame["u"].to_numpy()], names_i[frame["i"].to_numpy()]
    if maps is None:
        kept = reviewed["u"].isin(frame["u"].unique()) & reviewed["i"].isin(frame["i"].unique())
        user_order = pd.unique(names_u[reviewed.loc[kept, "u"].to_numpy()])
        item_order = pd.unique(names_i[reviewed.loc[kept, "i"].to_numpy()])
        return (
            pd.Index(user_order).get_indexer(user_names),
            pd.Index(item_order).get_indexer(item_names),
            user_order,
            item_order,
        )
    assert mapping_dir is not None
    user_map, item_map = maps
    report.ids = f"MMRec mapping files in {mapping_dir}"
    user_ids = _map_ids(user_names, user_map, mapping_dir / "u_id_mapping.csv", "reviewer")
    item_ids = _map_ids(item_names, item_map, mapping_dir / "i_id_mapping.csv", "ASIN")
    user_order = np.array(sorted(user_map, key=user_map.__getitem__), dtype=object)
    item_order = np.array(sorted(item_map, key=item_map.__getitem__), dtype=object)
    return user_ids, item_ids, user_order, item_order


def _items_table(
    meta_file: Path | None, item_order: np.ndarray, progress: bool, report: ConversionReport
) -> pd.DataFrame:
    """``items.tsv``: each item's text fields and image URL from the metadata (empty where it has none)."""
    meta: dict[str, dict[str, str]] = {}
    if meta_file is not None:
        meta, meta_counts = read_meta(meta_file, set(item_order.tolist()), progress)
        report.meta_lines, report.meta_skipped_lines = meta_counts.lines, meta_counts.skipped
    report.items_without_meta = int(sum(asin not in meta for asin in item_order))
    empty = {"title": "", "description": "", "brand": "", "categories": "", "image_url": ""}
    rows = [{"itemID": i, "asin": asin, **meta.get(asin, empty), "image": ""} for i, asin in enumerate(item_order)]
    items = pd.DataFrame(rows)
    report.items_without_image_url = int((items["image_url"] == "").sum())
    if meta_file is None:
        log.warning("no metadata file: the %d items have no text and no image URL", len(item_order))
    elif report.items_without_meta:
        log.warning("%s: %d items have no metadata line (no text, no image)", meta_file, report.items_without_meta)
    return items


def _write_catalogue(
    out: Path,
    inter: pd.DataFrame,
    items: pd.DataFrame,
    user_order: np.ndarray,
    item_order: np.ndarray,
    report: ConversionReport,
) -> None:
    """Every file of the catalogue into a temporary folder, then the folder moved to ``out`` at once."""
    with atomic_folder(out, replace=True) as tmp:
        inter.to_csv(tmp / f"{out.name}.inter", sep="\t", index=False, columns=_INTER_COLUMNS)
        items.to_csv(tmp / "items.tsv", sep="\t", index=False)
        pd.DataFrame({"user_id": user_order, "userID": np.arange(len(user_order))}).to_csv(
            tmp / "u_id_mapping.csv", sep="\t", index=False
        )
        pd.DataFrame({"asin": item_order, "itemID": np.arange(len(item_order))}).to_csv(
            tmp / "i_id_mapping.csv", sep="\t", index=False
        )
        (tmp / "conversion.json").write_text(json.dumps(report.to_dict(), indent=2) + "\n")


_INTER_COLUMNS = ["userID", "itemID", "rating", "timestamp", "x_label"]


def _map_ids(names: np.ndarray, mapping: dict[str, int], source: Path, what: str) -> np.ndarray:
    ids = pd.Series(names).map(mapping)
    if ids.isna().any():
        missing = pd.unique(names[ids.isna().to_numpy()])
        raise DataError(
            f"{source}: {len(missing)} {what}s of the converted reviews are not in it (first: {missing[0]}); the "
            "reviews file is not the one this mapping was made from"
        )
    present = set(pd.unique(names).tolist())
    absent = [key for key in mapping if key not in present]
    if absent:
        raise DataError(
            f"{source}: {len(absent)} {what}s in the mapping have no review after the k-core filter (first: "
            f"{absent[0]}); pass the category's full 5-core reviews file, or convert without --mapping-dir"
        )
    return ids.to_numpy(dtype=np.int64)


def _take_split(inter: pd.DataFrame, given: pd.DataFrame, source: Path) -> pd.DataFrame:
    keys = inter["userID"].to_numpy() * (1 << 32) + inter["itemID"].to_numpy()
    given_keys = given["userID"].to_numpy() * (1 << 32) + given["itemID"].to_numpy()
    if len(np.unique(given_keys)) != len(given_keys):
        raise DataError(f"{source}: repeats (userID, itemID) pairs; --inter must list each interaction once")
    only_ours = np.setdiff1d(keys, given_keys)
    only_theirs = np.setdiff1d(given_keys, keys)
    if len(only_ours) or len(only_theirs):
        raise DataError(
            f"{source}: its interactions differ from the converted ones ({len(only_theirs)} only in it, "
            f"{len(only_ours)} only in the reviews); check that it, the reviews and the mapping are of one dataset"
        )
    labels = pd.Series(given["x_label"].to_numpy(), index=given_keys)
    return inter.assign(x_label=labels.loc[keys].to_numpy().astype(np.int8))


def read_items_for_fetch(catalogue: Path) -> pd.DataFrame:
    """``items.tsv`` of a converted catalogue with the columns image fetching needs."""
    items_file = catalogue / "items.tsv"
    frame = read_tsv(items_file, "items.tsv")
    for column in ("itemID", "image_url"):
        if column not in frame.columns:
            raise DataError(f"{items_file}: no {column} column; is this a catalogue made by mdrchca data amazon?")
    frame["itemID"] = integer_column(frame, "itemID", items_file)
    repeated = frame["itemID"][frame["itemID"].duplicated()]
    if len(repeated):
        raise DataError(
            f"{items_file}: itemID {int(repeated.iloc[0])} has more than one row (both would be fetched into one "
            "image file); keep one row per item"
        )
    if "image" not in frame.columns:
        frame["image"] = ""
    return frame

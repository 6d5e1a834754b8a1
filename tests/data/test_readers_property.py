"""Property: every reader of user input either loads correctly or stops with one DataError line, never
another exception, a hang or a file left behind (hypothesis draws the malformed inputs)."""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from mdrchca.config import DataConfig
from mdrchca.data.dataset import load_dataset
from mdrchca.data.features import load_sequence_features
from mdrchca.errors import DataError, MdrchcaError
from mdrchca.features.catalogue import read_catalogue
from mdrchca.features.image import load_image

SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
CELLS = st.one_of(
    st.integers(-5, 12).map(str),
    st.sampled_from(["", " ", "1.5", "3.0", "1e3", "nan", "-0", "x", "0x1f", "99999999999999999999999", "２"]),
    st.text(max_size=4),
)
HEADERS = st.lists(st.sampled_from(["userID", "itemID", "x_label", "rating", "timestamp", "user", ""]), max_size=5)


def _listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def _one_line(exc: MdrchcaError) -> None:
    assert "\n" not in str(exc) and str(exc)


@SETTINGS
@given(header=HEADERS, rows=st.lists(st.lists(CELLS, min_size=0, max_size=5), max_size=12))
def test_malformed_inter_files(header: list[str], rows: list[list[str]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "d"
        folder.mkdir()
        text = "\n".join(["\t".join(header), *("\t".join(r) for r in rows)]) + "\n"
        (folder / "d.inter").write_text(text, encoding="utf-8")
        before = _listing(folder)
        try:
            data = load_dataset(folder)
        except DataError as exc:
            _one_line(exc)
        else:  # a correct load: every pair is in range and the splits are disjoint and complete
            assert len(data.train) + len(data.valid) + len(data.test) > 0
            for split in (data.train, data.valid, data.test):
                assert (split[:, 0] < data.n_users).all() and (split[:, 1] < data.n_items).all()
        assert _listing(folder) == before


@SETTINGS
@given(blob=st.binary(max_size=400))
def test_random_bytes_as_inter(blob: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "d"
        folder.mkdir()
        (folder / "d.inter").write_bytes(blob)
        try:
            load_dataset(folder)
        except DataError as exc:
            _one_line(exc)
        assert _listing(folder) == ["d.inter"]


DTYPES = st.sampled_from(["float32", "float16", "float64", "int8", "bool", "complex64", "U3", "uint8"])


@SETTINGS
@given(
    shape=st.lists(st.integers(0, 7), min_size=0, max_size=3),
    dtype=DTYPES,
    special=st.sampled_from([None, np.nan, np.inf, -np.inf]),
)
def test_item_feature_arrays_of_any_shape_dtype_and_value(shape: list[int], dtype: str, special) -> None:
    from tests.conftest import tiny_rows, write_inter

    with tempfile.TemporaryDirectory() as tmp:
        folder = write_inter(Path(tmp) / "d", tiny_rows())
        array = np.ones(shape, dtype=np.float64)
        if special is not None and array.size:
            array.flat[0] = special
        with np.errstate(invalid="ignore"):
            np.save(folder / "text_feat.npy", array.astype(dtype))
        try:
            data = load_dataset(folder)
        except DataError as exc:
            _one_line(exc)
        else:
            feats = data.features["text"]
            assert feats.n_items >= data.n_items and feats.dim >= 1
            assert np.isfinite(feats.item_vectors.numpy()).all()


@SETTINGS
@given(blob=st.binary(max_size=300), pickled=st.booleans())
def test_random_bytes_and_pickles_as_npy(blob: bytes, pickled: bool) -> None:
    from tests.conftest import tiny_rows, write_inter

    with tempfile.TemporaryDirectory() as tmp:
        folder = write_inter(Path(tmp) / "d", tiny_rows())
        if pickled:
            np.save(folder / "text_feat.npy", np.array([{"a": 1}] * 6, dtype=object), allow_pickle=True)
        else:
            (folder / "text_feat.npy").write_bytes(blob)
        with pytest.raises(DataError) as info:
            load_dataset(folder)
        _one_line(info.value)


STORE_PARTS = st.sampled_from(["values", "mask", "phrase_ids", "item", "manifest"])


@SETTINGS
@given(
    part=STORE_PARTS,
    damage=st.sampled_from(["empty", "bytes", "shape", "dtype", "huge_phrase", "nan", "missing"]),
)
def test_damaged_feature_stores(small_store: Path, part: str, damage: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "text"
        shutil.copytree(small_store, store)
        path = store / ("manifest.json" if part == "manifest" else f"{part}.npy")
        if damage == "empty":
            path.write_bytes(b"")
        elif damage == "bytes":
            path.write_bytes(os.urandom(64))
        elif damage == "missing":
            path.unlink()
        elif part != "manifest":
            array = np.load(path)
            if damage == "shape":
                array = array.reshape(-1)
            elif damage == "dtype":
                array = array.astype(np.float32 if array.dtype == np.bool_ else np.int8).astype("U2")
            elif damage == "huge_phrase":
                array = np.full_like(array, 10**6) if array.dtype.kind in "iu" else array
            elif damage == "nan" and array.dtype.kind == "f":
                array = array.copy()
                array.flat[0] = np.nan
            np.save(path, array)
        try:
            feats = load_sequence_features(store, "text")
        except DataError as exc:
            _one_line(exc)
        else:
            assert feats.values.shape[:2] == feats.mask.shape
            if feats.phrase_ids is not None:
                assert int(feats.phrase_ids.max()) < feats.max_length


@pytest.fixture(scope="module")
def small_store(small_featured: Path) -> Path:
    return small_featured / "features" / "text"


@SETTINGS
@given(
    header=st.lists(st.sampled_from(["itemID", "title", "text", "image", "x"]), min_size=0, max_size=5),
    rows=st.lists(st.lists(CELLS, max_size=5), max_size=6),
    binary=st.booleans(),
)
def test_random_items_tsv(header: list[str], rows: list[list[str]], binary: bool) -> None:
    from tests.conftest import tiny_rows, write_inter

    with tempfile.TemporaryDirectory() as tmp:
        folder = write_inter(Path(tmp) / "c", tiny_rows())
        text = "\n".join(["\t".join(header), *("\t".join(r) for r in rows)]) + "\n"
        (folder / "items.tsv").write_bytes(b"\xff\xfe\x00" + text.encode() if binary else text.encode())
        before = _listing(folder)
        try:
            catalogue = read_catalogue(folder, ["title", "text"], ["image"])
        except DataError as exc:
            _one_line(exc)
        else:
            assert catalogue.n_items >= 6
        assert _listing(folder) == before


def _image_bytes(kind: str) -> bytes:
    buffer = io.BytesIO()
    if kind == "cmyk":
        Image.new("CMYK", (9, 7), (10, 20, 30, 40)).save(buffer, "JPEG")
    elif kind == "one_pixel":
        Image.new("RGB", (1, 1), (255, 0, 0)).save(buffer, "PNG")
    elif kind == "palette":
        Image.new("P", (5, 5)).save(buffer, "GIF")
    elif kind in ("truncated", "huge"):
        Image.new("RGB", (64, 64) if kind == "huge" else (40, 40), (0, 9, 9)).save(buffer, "PNG")
        if kind == "truncated":
            return buffer.getvalue()[:60]
    elif kind == "greyscale16":
        Image.new("I;16", (6, 6)).save(buffer, "PNG")
    return buffer.getvalue()


@SETTINGS
@given(
    kind=st.sampled_from(["cmyk", "one_pixel", "palette", "truncated", "huge", "greyscale16", "zero", "random"]),
    noise=st.binary(min_size=1, max_size=200),
)
def test_random_images(kind: str, noise: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "img"
        path.write_bytes(b"" if kind == "zero" else noise if kind == "random" else _image_bytes(kind))
        try:
            # a 64 x 64 image stands for a huge one: the bound is lowered, not the image raised
            pixels = load_image(path, 16, (0.5,) * 3, (0.5,) * 3, max_pixels=40 * 40)
        except DataError as exc:
            _one_line(exc)
            assert kind in ("truncated", "huge", "zero", "random")
        else:
            assert tuple(pixels.shape) == (3, 16, 16) and bool(pixels.isfinite().all())
            assert kind not in ("truncated", "huge", "zero")


def test_non_regular_files_are_refused_without_waiting(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    with pytest.raises(DataError, match="not a regular file"):
        load_image(fifo, 16, (0.5,) * 3, (0.5,) * 3)
    folder = tmp_path / "d"
    folder.mkdir()
    os.mkfifo(folder / "d.inter")
    with pytest.raises(DataError, match="not a regular file"):
        load_dataset(folder)
    (folder / "d.inter").unlink()
    from tests.conftest import tiny_rows, write_inter

    write_inter(folder, tiny_rows())
    os.mkfifo(folder / "text_feat.npy")
    with pytest.raises(DataError, match="not a regular file"):
        load_dataset(folder)


def test_an_id_far_beyond_the_catalogue_is_refused_before_allocating(tmp_path: Path) -> None:
    from tests.conftest import tiny_rows, write_inter

    folder = write_inter(tmp_path / "d", [*tiny_rows(), (10**12, 1, 0)])
    with pytest.raises(DataError, match=r"userID 1000000000000 on line 14 is above max_id 100000000"):
        load_dataset(folder)
    assert load_dataset(write_inter(tmp_path / "e", [*tiny_rows(), (50, 1, 0)]), DataConfig(max_id=60)).n_users == 51

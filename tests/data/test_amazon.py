"""The Amazon converter: the three public layouts, MMRec's k-core and split on hand-computed data, MMRec's ids
and split reproduced exactly on Amazon Baby, and bad input as one line or a counted skip."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mdrchca.cli.main import cli
from mdrchca.data.amazon import convert_amazon, k_core
from mdrchca.errors import DataError

BABY = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "amazon-baby"
MINI = Path(__file__).resolve().parent / "fixtures" / "amazon-mini"  # invented ids: runs on any clone
# a source: its folder, the name of its files, users, items, interactions, items without an image URL
SOURCES = {
    "mini": (MINI, "mini", 40, 25, 385, 2),
    "baby": (BABY, "baby", 19445, 7050, 160792, 13),
}


def write_lines(path: Path, lines: list[str]) -> Path:
    data = ("\n".join(lines) + "\n").encode()
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def review_2014(user: str, item: str, when: int, rating: float = 5.0) -> str:
    return json.dumps({"reviewerID": user, "asin": item, "overall": rating, "unixReviewTime": when, "reviewText": "ok"})


def meta_2014(item: str, title: str, url: str) -> str:
    # Python literal, as the 2014 metadata files are (single quotes: not JSON)
    return repr({"asin": item, "title": title, "imUrl": url, "categories": [["Baby", "Toys"]], "brand": "B"})


def test_k_core_on_a_hand_computed_cascade() -> None:
    # u0..u4 each rate i0..i4 (a 5 x 5 block: all 5-core); u5 rates i0..i3 only (4 < 5: dropped); u6 rates i5
    # with 4 others who are dropped with it... i5 has only u6 and u5 is gone: i5 then has 1 rating
    users = [u for u in range(5) for _ in range(5)] + [5] * 4 + [6] * 5
    items = [i for _ in range(5) for i in range(5)] + [0, 1, 2, 3] + [5, 0, 1, 2, 3]
    keep, rounds = k_core(np.array(users), np.array(items), 5)
    # round 1 drops u5 (4 ratings) and i5 (1 rating); then u6 has 4 left and goes in round 2
    assert keep.tolist() == [True] * 25 + [False] * 9
    assert rounds == 2
    assert k_core(np.array(users), np.array(items), 0)[0].all()


def test_conversion_of_a_small_2014_category(tmp_path: Path) -> None:
    lines = []
    for u in range(6):
        for i in range(6):
            if (u, i) != (5, 5):
                lines.append(review_2014(f"U{u}", f"A{i}", 1000 + 10 * u + i))
    lines.append(review_2014("U9", "A0", 5))  # a user with one review: dropped by the 5-core
    lines.append(review_2014("U0", "A0", 1000))  # an exact duplicate: dropped
    lines.append(review_2014("U0", "A1", 999))  # the same pair earlier: the earliest review is kept
    reviews = write_lines(tmp_path / "reviews_Baby_5.json.gz", lines)
    meta = write_lines(
        tmp_path / "meta_Baby.json.gz",
        [meta_2014(f"A{i}", f"Title {i}\twith tab", f"http://img/{i}.jpg") for i in range(5)]
        + ["{'asin': 'A5', 'title': __import__('os').system('touch PWNED')}"],
    )
    report = convert_amazon(reviews, meta, tmp_path / "baby", k=5)
    assert not Path("PWNED").exists() and not (tmp_path / "PWNED").exists()
    assert (report.users, report.items, report.interactions) == (6, 6, 35)
    assert report.exact_duplicates_dropped == 1 and report.repeated_pairs_dropped == 1
    assert report.k_core_dropped == 1 and report.meta_skipped_lines == 1 and report.items_without_meta == 1
    inter = pd.read_csv(tmp_path / "baby" / "baby.inter", sep="\t")
    assert list(inter.columns) == ["userID", "itemID", "rating", "timestamp", "x_label"]
    # ids by first appearance, as MMRec numbers them
    users = pd.read_csv(tmp_path / "baby" / "u_id_mapping.csv", sep="\t")
    assert users.user_id.tolist() == [f"U{u}" for u in range(6)]
    assert int(inter.query("userID == 0 and itemID == 1").timestamp.iloc[0]) == 999
    # MMRec's split rule: 5 or 6 interactions per user -> n-2 / 1 / 1
    per_user = inter.groupby("userID").x_label.value_counts().unstack(fill_value=0)
    assert (per_user[1] == 1).all() and (per_user[2] == 1).all()
    items = pd.read_csv(tmp_path / "baby" / "items.tsv", sep="\t", keep_default_na=False)
    assert items.loc[0, "title"] == "Title 0 with tab" and items.loc[0, "categories"] == "Baby > Toys"
    assert items.loc[5, "title"] == "" and items.image.eq("").all()
    # the catalogue reads back through the data layer
    from mdrchca.features.catalogue import read_catalogue

    assert read_catalogue(tmp_path / "baby", ["title", "description"], ["image"]).n_items == 6


def test_a_repeated_pair_is_merged_before_the_k_core(tmp_path: Path) -> None:
    # U5 reviews A0..A3 once and A0 a second time: five reviews, four items. Merged after the k-core (as before)
    # U5 passed the 5-core and ended with 4 interactions; merged first, U5 is dropped and the 5-core holds
    lines = [review_2014(f"U{u}", f"A{i}", 100 * u + i) for u in range(5) for i in range(5)]
    lines += [review_2014("U5", f"A{i}", 900 + i) for i in range(4)] + [review_2014("U5", "A0", 999)]
    report = convert_amazon(write_lines(tmp_path / "r.json", lines), None, tmp_path / "out", k=5)
    inter = pd.read_csv(tmp_path / "out" / "out.inter", sep="\t")
    assert report.repeated_pairs_dropped == 1 and report.users == 5 and len(inter) == 25
    assert inter.groupby("userID").size().min() >= 5 and inter.groupby("itemID").size().min() >= 5


def test_2023_fields_entities_a_byte_order_mark_and_no_metadata(tmp_path: Path) -> None:
    reviews = [
        json.dumps(
            {
                "user_id": f"U{u}",
                "parent_asin": f"P{i}",
                "asin": f"P{i}-red",
                "rating": 4.0,
                "timestamp": 1_600_000_000_000 + 1000 * (10 * u + i),
            }
        )
        for u in range(5)
        for i in range(5)
    ]
    meta = [
        json.dumps(
            {
                "parent_asin": f"P{i}",
                "title": f"Tom &amp; Jerry&#39;s cup {i}",
                "description": ["Soft."],
                "features": ["BPA free", "Dishwasher safe"],
                "store": "Acme",
                "images": [{"thumb": None, "large": f"http://img/{i}.jpg", "hi_res": None, "variant": "MAIN"}],
            }
        )
        for i in range(5)
    ]
    reviews_file = tmp_path / "Baby_Products.jsonl"
    reviews_file.write_bytes(b"\xef\xbb\xbf" + ("\n".join(reviews) + "\n").encode())  # a byte-order mark
    meta_file = tmp_path / "meta_Baby_Products.jsonl"
    meta_file.write_bytes(b"\xef\xbb\xbf" + ("\n".join(meta) + "\n").encode())
    report = convert_amazon(reviews_file, meta_file, tmp_path / "baby", k=5)
    assert (report.users, report.items, report.interactions, report.skipped_lines) == (5, 5, 25, 0)
    inter = pd.read_csv(tmp_path / "baby" / "baby.inter", sep="\t")
    assert inter.timestamp.min() == 1_600_000_000  # milliseconds read as seconds
    items = pd.read_csv(tmp_path / "baby" / "items.tsv", sep="\t", keep_default_na=False)
    assert items.loc[0, "asin"] == "P0" and items.loc[0, "title"] == "Tom & Jerry's cup 0"
    assert items.loc[0, "description"] == "Soft. BPA free Dishwasher safe"
    assert items.loc[0, "brand"] == "Acme" and items.loc[0, "image_url"] == "http://img/0.jpg"

    bare = convert_amazon(reviews_file, None, tmp_path / "bare", k=5)  # interactions only: no text, no image
    assert bare.items_without_meta == 5
    assert (pd.read_csv(tmp_path / "bare" / "items.tsv", sep="\t", keep_default_na=False).title == "").all()
    missing = CliRunner().invoke(
        cli,
        [
            "data",
            "amazon",
            "--reviews",
            str(reviews_file),
            "--meta",
            str(tmp_path / "nope.jsonl"),
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert missing.exit_code == 2 and missing.output.count("\n") == 1 and "nope.jsonl: not found" in missing.output
    assert not (tmp_path / "o").exists()


def test_bad_inputs_are_one_line_errors(tmp_path: Path) -> None:
    good = write_lines(tmp_path / "r.json", [review_2014(f"U{u}", f"A{i}", 1) for u in range(5) for i in range(5)])
    meta = write_lines(tmp_path / "m.json", [meta_2014("A0", "t", "")])
    whole = gzip.compress(good.read_bytes())
    (tmp_path / "cut.json.gz").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DataError, match="gzip stream is truncated or corrupt"):
        convert_amazon(tmp_path / "cut.json.gz", meta, tmp_path / "o1")
    write_lines(tmp_path / "junk.json", ["not json", "{broken"] * 6 + [review_2014("U", "A", 1)] * 3)
    with pytest.raises(DataError, match="12 of 15 lines are neither JSON nor a Python literal"):
        convert_amazon(tmp_path / "junk.json", meta, tmp_path / "o2")
    (tmp_path / "latin.json").write_bytes(b'{"reviewerID": "caf\xe9"}\n')
    with pytest.raises(DataError, match="not UTF-8"):
        convert_amazon(tmp_path / "latin.json", meta, tmp_path / "o3")
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x").write_text("x")
    with pytest.raises(DataError, match="not an empty folder"):
        convert_amazon(good, meta, tmp_path / "taken")
    mapping = tmp_path / "map"
    mapping.mkdir()
    (mapping / "u_id_mapping.csv").write_text("user_id\tuserID\n" + "".join(f"U{u}\t{u}\n" for u in range(5)))
    (mapping / "i_id_mapping.csv").write_text("asin\titemID\n" + "".join(f"A{i}\t{i}\n" for i in range(6)))
    with pytest.raises(DataError, match="1 ASINs in the mapping have no review after the k-core filter .first: A5"):
        convert_amazon(good, meta, tmp_path / "o4", mapping_dir=mapping)
    for name in ("o1", "o2", "o3", "o4"):
        assert not (tmp_path / name).exists()
    result = CliRunner().invoke(
        cli,
        [
            "data",
            "amazon",
            "--reviews",
            str(tmp_path / "cut.json.gz"),
            "--meta",
            str(meta),
            "--out",
            str(tmp_path / "o5"),
        ],
    )
    assert result.exit_code == 2 and result.output.count("\n") == 1 and "truncated" in result.output


def _baby_fixture(folder: Path, layout: str, source: Path = BABY, name: str = "baby") -> tuple[Path, Path]:
    """Reviews and metadata in one public layout from the ids, split and URLs of an MMRec folder (Amazon Baby's
    real ones, or the committed invented ones), with invented text."""
    inter = pd.read_csv(source / f"{name}.inter", sep="\t")
    users = pd.read_csv(source / "u_id_mapping.csv", sep="\t").set_index("userID").user_id
    items = pd.read_csv(source / "i_id_mapping.csv", sep="\t").set_index("itemID").asin
    urls = pd.read_csv(source / f"{name}_url.csv", keep_default_na=False).set_index("itemID").imUrl
    rng = np.random.default_rng(0)
    order = rng.permutation(len(inter))  # the files are not in id order
    reviewer, asin = users.loc[inter.userID].to_numpy()[order], items.loc[inter.itemID].to_numpy()[order]
    when = 1_300_000_000 + rng.integers(0, 10**8, len(inter))
    rating = rng.integers(1, 6, len(inter))
    lines, meta = [], []
    if layout == "2014":
        reviews_file, meta_file = folder / "reviews_Baby_5.json.gz", folder / "meta_Baby.json.gz"
        for u, a, t, r in zip(reviewer, asin, when, rating, strict=True):
            lines.append(json.dumps({"reviewerID": u, "asin": a, "overall": float(r), "unixReviewTime": int(t)}))
        for i, a in items.items():
            meta.append(repr({"asin": a, "title": f"Baby thing {i}", "imUrl": urls.loc[i], "categories": [["Baby"]]}))
    elif layout == "2018":
        reviews_file, meta_file = folder / "Baby_5.json.gz", folder / "meta_Baby.json.gz"
        for u, a, t, r in zip(reviewer, asin, when, rating, strict=True):
            lines.append(json.dumps({"overall": float(r), "reviewerID": u, "asin": a, "unixReviewTime": int(t)}))
        for i, a in items.items():
            meta.append(
                json.dumps(
                    {
                        "asin": a,
                        "title": f"Baby thing {i}",
                        "imageURLHighRes": [urls.loc[i]],
                        "description": ["soft", "warm"],
                        "category": ["Baby"],
                    }
                )
            )
    else:
        reviews_file, meta_file = folder / "Baby_Products.jsonl", folder / "meta_Baby_Products.jsonl"
        for u, a, t, r in zip(reviewer, asin, when, rating, strict=True):
            lines.append(
                json.dumps(
                    {"rating": float(r), "user_id": u, "parent_asin": a, "asin": a + "X", "timestamp": int(t) * 1000}
                )
            )
        for i, a in items.items():
            meta.append(
                json.dumps(
                    {
                        "parent_asin": a,
                        "title": f"Baby thing {i}",
                        "store": "S",
                        "images": [{"large": urls.loc[i], "variant": "MAIN"}],
                    }
                )
            )
    return write_lines(reviews_file, lines), write_lines(meta_file, meta)


def _source(key: str) -> tuple[Path, str, int, int, int, int]:
    source = SOURCES[key]
    if not source[0].is_dir():
        pytest.skip(f"needs {source[0]} (MMRec's ids and the split)")
    return source


@pytest.mark.parametrize("key", ["mini", "baby"])
@pytest.mark.parametrize("layout", ["2014", "2018", "2023"])
def test_mmrec_ids_and_the_given_split_are_reproduced(tmp_path: Path, layout: str, key: str) -> None:
    source, name, n_users, n_items, n_interactions, without_url = _source(key)
    reviews, meta = _baby_fixture(tmp_path, layout, source, name)
    out = tmp_path / name
    report = convert_amazon(reviews, meta, out, mapping_dir=source, inter_file=source / f"{name}.inter")
    assert (report.users, report.items, report.interactions) == (n_users, n_items, n_interactions)
    assert report.k_core_dropped == 0 and report.skipped_lines == 0 and report.items_without_meta == 0
    ours = pd.read_csv(out / f"{name}.inter", sep="\t")[["userID", "itemID", "x_label"]]
    theirs = pd.read_csv(source / f"{name}.inter", sep="\t").sort_values(["userID", "itemID"], ignore_index=True)
    pd.testing.assert_frame_equal(ours, theirs, check_dtype=False)
    items = pd.read_csv(out / "items.tsv", sep="\t", keep_default_na=False)
    urls = pd.read_csv(source / f"{name}_url.csv", keep_default_na=False)
    assert items.image_url.tolist() == urls.imUrl.tolist()
    assert report.items_without_image_url == without_url
    assert (
        (pd.read_csv(out / "i_id_mapping.csv", sep="\t") == pd.read_csv(source / "i_id_mapping.csv", sep="\t"))
        .all()
        .all()
    )


@pytest.mark.parametrize("key", ["mini", "baby"])
def test_without_the_given_split_mmrecs_rule_is_followed(tmp_path: Path, key: str) -> None:
    source, name, *_ = _source(key)
    reviews, meta = _baby_fixture(tmp_path, "2018", source, name)
    convert_amazon(reviews, meta, tmp_path / name, mapping_dir=source, split_seed=3)
    ours = pd.read_csv(tmp_path / name / f"{name}.inter", sep="\t")
    theirs = pd.read_csv(source / f"{name}.inter", sep="\t")
    assert set(zip(ours.userID, ours.itemID, strict=True)) == set(zip(theirs.userID, theirs.itemID, strict=True))
    counts = ours.groupby("userID").x_label.agg(["size", lambda x: (x == 1).sum(), lambda x: (x == 2).sum()])
    counts.columns = ["n", "valid", "test"]
    small = counts[counts.n < 10]
    assert (small.valid == 1).all() and (small.test == 1).all()
    large = counts[counts.n >= 10]
    assert (large.valid == (large.n * 0.1 + 1e-9).astype(int)).all()


LINES = st.one_of(
    st.builds(
        review_2014,
        st.sampled_from(["U0", "U1", "U2", "", "U\t3"]),
        st.sampled_from(["A0", "A1", ""]),
        st.integers(-5, 10**10),
    ),
    st.builds(
        lambda u, a: json.dumps({"user_id": u, "parent_asin": a, "rating": "x", "timestamp": None}),
        st.text(max_size=3),
        st.text(max_size=3),
    ),
    st.builds(repr, st.dictionaries(st.sampled_from(["asin", "title", "imUrl"]), st.text(max_size=5), max_size=3)),
    st.text(max_size=30),
    st.sampled_from(["[1, 2]", "null", "{'a': (1, 2)}", '{"reviewerID": 5, "asin": [1]}', "{" * 50]),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(reviews=st.lists(LINES, max_size=40), meta=st.lists(LINES, max_size=10), gz=st.booleans(), k=st.integers(0, 3))
def test_any_lines_convert_or_stop_with_one_line(tmp_path_factory, reviews, meta, gz, k) -> None:
    """Property: whatever the lines, the converter writes a catalogue that reads back, or stops with one
    DataError line and writes nothing."""
    folder = tmp_path_factory.mktemp("prop")
    r = write_lines(folder / ("r.json.gz" if gz else "r.json"), reviews)
    m = write_lines(folder / "m.json", meta)
    try:
        report = convert_amazon(r, m, folder / "out", k=k)
    except DataError as exc:
        assert "\n" not in str(exc)
        assert not (folder / "out").exists()
    else:
        inter = pd.read_csv(folder / "out" / "out.inter", sep="\t")
        assert len(inter) == report.interactions and inter.userID.max() < report.users
        assert not inter.duplicated(["userID", "itemID"]).any()

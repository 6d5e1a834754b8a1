from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from mdrchca.data.synthetic import SyntheticSpec, generate
from tests.conftest import SMALL_SPEC


def test_catalogue_files_and_ground_truth(small_catalogue: Path) -> None:
    items = pd.read_csv(small_catalogue / "items.tsv", sep="\t")
    truth = pd.read_csv(small_catalogue / "ground_truth.tsv", sep="\t")
    assert len(items) == len(truth) == SMALL_SPEC.n_items
    assert truth.mismatched.sum() == round(SMALL_SPEC.mismatch_rate * SMALL_SPEC.n_items)
    bad = truth[truth.mismatched == 1]
    assert (bad.colour != bad.image_colour).all() and (bad["shape"] != bad.image_shape).all()
    good = truth[truth.mismatched == 0]
    assert (good.colour == good.image_colour).all()
    # The text names the true colour and shape.
    for row, text in zip(truth.itertuples(), items.text, strict=True):
        assert row.colour in text and row[3] in text
    image = Image.open(small_catalogue / items.image[0])
    assert image.size == (SMALL_SPEC.image_size, SMALL_SPEC.image_size)


def test_generator_is_deterministic(tmp_path: Path) -> None:
    spec = SyntheticSpec(n_users=40, n_items=30, image_size=16, seed=11)
    a = generate(tmp_path / "a", spec)
    b = generate(tmp_path / "b", spec)
    assert (a / "a.inter").read_text() == (b / "b.inter").read_text()
    assert (a / "items.tsv").read_text() == (b / "items.tsv").read_text()
    assert np.array_equal(np.asarray(Image.open(a / "images/3.png")), np.asarray(Image.open(b / "images/3.png")))


def test_interactions_follow_preferences(small_catalogue: Path) -> None:
    """Users' items share attributes far more than chance: the data carries a learnable signal."""
    inter = pd.read_csv(small_catalogue / "small.inter", sep="\t")
    truth = pd.read_csv(small_catalogue / "ground_truth.tsv", sep="\t")
    colours = truth.colour.to_numpy()[inter.itemID.to_numpy()]
    by_user = pd.Series(colours).groupby(inter.userID.to_numpy())
    top_share = by_user.agg(lambda c: c.value_counts(normalize=True).iloc[0])
    assert top_share.mean() > 2 / 8  # chance for 8 colours is about 1/8

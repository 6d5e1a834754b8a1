import logging
from pathlib import Path

import numpy as np
import pytest

from mdrchca.config import DataConfig
from mdrchca.data import load_dataset
from mdrchca.errors import DataError
from tests.conftest import save_features, tiny_rows, write_inter


def test_loads_mmrec_folder_with_features(tmp_path: Path) -> None:
    folder = write_inter(tmp_path / "toy", tiny_rows())
    save_features(folder, "text", np.eye(6, 4, dtype=np.float32))
    save_features(folder, "audio", np.ones((6, 3), dtype=np.float32))
    data = load_dataset(folder)
    assert (data.n_users, data.n_items) == (3, 6)
    assert len(data.train) == 6 and len(data.valid) == 3 and len(data.test) == 3
    assert sorted(data.modalities) == ["audio", "text"]
    assert data.features["text"].values.shape == (6, 1, 4)
    assert data.features["text"].mask.all()
    np.testing.assert_allclose(data.features["text"].item_vectors.numpy(), np.eye(6, 4))


def test_optional_rating_and_timestamp_columns(tmp_path: Path) -> None:
    rows = [(u, i, 5, 100, x) for u, i, x in tiny_rows()]
    folder = write_inter(tmp_path / "rt", rows, header="userID\titemID\trating\ttimestamp\tx_label")
    assert load_dataset(folder).n_users == 3


def test_modality_selection(tmp_path: Path) -> None:
    folder = write_inter(tmp_path / "sel", tiny_rows())
    save_features(folder, "text", np.ones((6, 2), dtype=np.float32))
    save_features(folder, "image", np.ones((6, 2), dtype=np.float32))
    assert load_dataset(folder, DataConfig(modalities=["image"])).modalities == ["image"]
    with pytest.raises(DataError, match="audio_feat.npy"):
        load_dataset(folder, DataConfig(modalities=["audio"]))


@pytest.mark.parametrize(
    ("rows", "header", "message"),
    [
        ([(0, 1)], "user\titemID", "missing column\\(s\\) userID"),
        (
            [("a", 1, 0)],
            "userID\titemID\tx_label",
            "column userID has 1 values that are not non-negative integers \\(first: 'a' on line 2\\)",
        ),
        (
            [(0, 1.5, 0)],
            "userID\titemID\tx_label",
            "column itemID has 1 values that are not non-negative integers \\(first: '1.5'",
        ),
        (
            [(0, -1, 0)],
            "userID\titemID\tx_label",
            "column itemID has 1 values that are not non-negative integers \\(first: '-1'",
        ),
        ([(0, 1, 3)], "userID\titemID\tx_label", "x_label must be 0, 1 or 2"),
        ([], "userID\titemID", "no interactions"),
    ],
)
def test_bad_interaction_files(tmp_path: Path, rows: list, header: str, message: str) -> None:
    folder = write_inter(tmp_path / "bad", rows, header=header)
    with pytest.raises(DataError, match=message) as info:
        load_dataset(folder)
    assert "bad.inter" in str(info.value)
    assert "\n" not in str(info.value)


def test_ragged_tsv(tmp_path: Path) -> None:
    folder = tmp_path / "ragged"
    folder.mkdir()
    (folder / "ragged.inter").write_text("userID\titemID\n0\t1\n1\t2\t3\t4\n")
    with pytest.raises(DataError, match="malformed TSV"):
        load_dataset(folder)


def test_missing_folder_and_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="dataset folder not found"):
        load_dataset(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no \\*.inter interactions file"):
        load_dataset(tmp_path / "empty")


def test_several_inter_files_need_a_choice(tmp_path: Path) -> None:
    folder = write_inter(tmp_path / "two", tiny_rows(), name="a")
    write_inter(folder, tiny_rows(), name="b")
    with pytest.raises(DataError, match="several interactions files"):
        load_dataset(folder)
    assert load_dataset(folder / "b.inter").n_items == 6


def test_feature_rows_must_match_items(tmp_path: Path) -> None:
    folder = write_inter(tmp_path / "rows", tiny_rows())
    save_features(folder, "text", np.ones((4, 2), dtype=np.float32))
    with pytest.raises(DataError, match="itemID 5 is out of range of text_feat.npy's 4 rows"):
        load_dataset(folder)


def test_feature_files_must_agree(tmp_path: Path) -> None:
    folder = write_inter(tmp_path / "agree", tiny_rows())
    save_features(folder, "text", np.ones((6, 2), dtype=np.float32))
    save_features(folder, "image", np.ones((7, 2), dtype=np.float32))
    with pytest.raises(DataError, match="disagree on the number of items"):
        load_dataset(folder)


def test_extra_feature_rows_define_cold_items(tmp_path: Path) -> None:
    folder = write_inter(tmp_path / "cold", tiny_rows())
    save_features(folder, "text", np.ones((8, 2), dtype=np.float32))
    assert load_dataset(folder).n_items == 8


def test_nan_features_are_rejected(tmp_path: Path) -> None:
    folder = write_inter(tmp_path / "nan", tiny_rows())
    feats = np.ones((6, 2), dtype=np.float32)
    feats[3, 1] = np.nan
    feats[5, 0] = np.inf
    save_features(folder, "image", feats)
    with pytest.raises(DataError, match="image_feat.npy: 2 rows contain NaN or Inf \\(first: row 3\\)"):
        load_dataset(folder)


def test_non_2d_features(tmp_path: Path) -> None:
    folder = write_inter(tmp_path / "dims", tiny_rows())
    save_features(folder, "text", np.ones(6, dtype=np.float32))
    with pytest.raises(DataError, match="expected a 2-D array"):
        load_dataset(folder)


def test_duplicates_are_dropped_and_counted(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rows = tiny_rows() + [(0, 0, 0), (0, 0, 2)]
    folder = write_inter(tmp_path / "dup", rows)
    with caplog.at_level(logging.WARNING):
        data = load_dataset(folder)
    assert data.notes["duplicates_dropped"] == 2
    assert "dropped 2 duplicate" in caplog.text
    assert len(data.train) + len(data.valid) + len(data.test) == 12


def test_empty_valid_split(tmp_path: Path) -> None:
    rows = [(u, i, 0 if x == 1 else x) for u, i, x in tiny_rows()]
    folder = write_inter(tmp_path / "novalid", rows)
    with pytest.raises(DataError, match="the valid split is empty"):
        load_dataset(folder)


def test_users_without_training_are_left_out_of_evaluation(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rows = tiny_rows() + [(3, 2, 2), (3, 1, 1)]
    folder = write_inter(tmp_path / "notrain", rows)
    with caplog.at_level(logging.WARNING):
        data = load_dataset(folder)
    assert data.notes["users_without_train"] == 1
    assert 3 not in data.eval_users("test")
    assert list(data.eval_users("test")) == [0, 1, 2]
    assert "1 users have no training interaction" in caplog.text


def test_random_split_when_no_x_label(tmp_path: Path) -> None:
    rows = [(u, i) for u in range(20) for i in range(u % 5, u % 5 + 12)]
    folder = write_inter(tmp_path / "nosplit", rows, header="userID\titemID")
    a = load_dataset(folder, DataConfig(split_seed=1))
    b = load_dataset(folder, DataConfig(split_seed=1))
    c = load_dataset(folder, DataConfig(split_seed=2))
    assert not a.split_was_given
    np.testing.assert_array_equal(a.test, b.test)
    assert not np.array_equal(a.test, c.test)
    # 12 interactions each: floor(1.2) = 1 valid, 1 test, 10 train per user.
    assert len(a.train) == 200 and len(a.valid) == 20 and len(a.test) == 20


def test_saved_split_reloads_exactly(tmp_path: Path) -> None:
    rows = [(u, i) for u in range(10) for i in range(12)]
    folder = write_inter(tmp_path / "save", rows, header="userID\titemID")
    data = load_dataset(folder, DataConfig(split_seed=5))
    data.save_split(tmp_path / "split.inter")
    again = load_dataset(folder, DataConfig(split_seed=123, split_file=str(tmp_path / "split.inter")))
    for split in ("train", "valid", "test"):
        np.testing.assert_array_equal(np.sort(getattr(data, split), axis=0), np.sort(getattr(again, split), axis=0))


def test_generated_catalogue_loads(small_catalogue: Path) -> None:
    data = load_dataset(small_catalogue)
    assert data.n_users == 300 and data.n_items <= 120
    assert data.split_was_given


def _many_rows(n_users: int = 30, n_items: int = 40) -> list[tuple[int, int]]:
    rng = np.random.default_rng(3)
    return sorted({(u, int(i)) for u in range(n_users) for i in rng.choice(n_items, 8, replace=False)})


def test_cold_item_split_mode(tmp_path: Path) -> None:
    rows = [(u, i, 0) for u, i in _many_rows()]  # the file's x_label (all train) is ignored
    folder = write_inter(tmp_path / "cold", rows)
    data = load_dataset(folder, DataConfig(split_mode="cold_items", split_seed=5))
    train_items = set(data.train[:, 1].tolist())
    valid_items, test_items = set(data.valid[:, 1].tolist()), set(data.test[:, 1].tolist())
    assert (len(valid_items), len(test_items)) == (4, 4)
    assert not (train_items & valid_items) and not (train_items & test_items) and not (valid_items & test_items)
    assert len(data.train) + len(data.valid) + len(data.test) == len(rows)
    assert set(np.flatnonzero(data.candidate_items("test")).tolist()) == test_items
    assert data.negative_pool().tolist() == sorted(train_items)
    user_split = load_dataset(write_inter(tmp_path / "user", _many_rows(), header="userID\titemID"))
    assert user_split.candidate_items("test") is None and user_split.negative_pool() is None


def test_cold_item_split_reloads_from_its_split_file(tmp_path: Path) -> None:
    folder = write_inter(tmp_path / "cold", [(u, i) for u, i in _many_rows()], header="userID\titemID")
    config = DataConfig(split_mode="cold_items")
    data = load_dataset(folder, config)
    data.save_split(tmp_path / "split.inter")
    again = load_dataset(folder, DataConfig(split_mode="cold_items", split_file=str(tmp_path / "split.inter")))
    assert np.array_equal(np.sort(again.test, axis=0), np.sort(data.test, axis=0))
    assert np.array_equal(again.candidate_items("valid"), data.candidate_items("valid"))
    per_user = load_dataset(folder)  # a per-user split is not a cold-start split
    per_user.save_split(tmp_path / "user.inter")
    with pytest.raises(DataError, match="not an item cold-start split"):
        load_dataset(folder, DataConfig(split_mode="cold_items", split_file=str(tmp_path / "user.inter")))
    with pytest.raises(DataError, match="split_mode must be"):
        load_dataset(folder, DataConfig(split_mode="items"))

"""Shared fixtures: a small synthetic catalogue and hand-written MMRec folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mdrchca.data.synthetic import SyntheticSpec, generate

SMALL_SPEC = SyntheticSpec(n_users=300, n_items=120, mean_interactions=14, image_size=32, seed=7)


@pytest.fixture(scope="session")
def small_catalogue(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small generated catalogue (300 users, 120 items) in MMRec layout with a raw items.tsv."""
    return generate(tmp_path_factory.mktemp("catalogue") / "small", SMALL_SPEC)


@pytest.fixture(autouse=True)
def _isolated_data_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never write the bundled dataset into the user's cache from a test."""
    monkeypatch.setenv("MDRCHCA_DATA_HOME", str(tmp_path_factory.getbasetemp() / "data_home"))


def write_inter(
    folder: Path, rows: list[tuple], header: str = "userID\titemID\tx_label", name: str | None = None
) -> Path:
    """Write an .inter TSV from tuples into ``folder``; returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = [header] + ["\t".join(str(v) for v in row) for row in rows]
    (folder / f"{name or folder.name}.inter").write_text("\n".join(lines) + "\n")
    return folder


def tiny_rows() -> list[tuple[int, int, int]]:
    """3 users x 6 items, every user with train, valid and test items."""
    return [
        (0, 0, 0),
        (0, 1, 0),
        (0, 2, 1),
        (0, 3, 2),
        (1, 1, 0),
        (1, 4, 0),
        (1, 5, 1),
        (1, 0, 2),
        (2, 2, 0),
        (2, 3, 0),
        (2, 4, 1),
        (2, 5, 2),
    ]


def save_features(folder: Path, name: str, array: np.ndarray) -> None:
    np.save(folder / f"{name}_feat.npy", array)

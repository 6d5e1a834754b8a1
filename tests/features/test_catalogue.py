from pathlib import Path

import pytest

from mdrchca.errors import DataError
from mdrchca.features.catalogue import read_catalogue
from tests.conftest import tiny_rows, write_inter


def _catalogue(tmp_path: Path, image_cells: list[str], text_cells: list[str] | None = None) -> Path:
    folder = write_inter(tmp_path / "cat", tiny_rows())
    texts = text_cells or [f"item {i}" for i in range(6)]
    lines = ["itemID\ttitle\timage"] + [f"{i}\t{texts[i]}\t{image_cells[i]}" for i in range(6)]
    (folder / "items.tsv").write_text("\n".join(lines) + "\n")
    return folder


@pytest.mark.parametrize("bad", ["../secret.png", "/etc/passwd", "images/../../x.png"])
def test_image_paths_must_stay_inside(tmp_path: Path, bad: str) -> None:
    folder = _catalogue(tmp_path, ["a.png"] * 5 + [bad])
    with pytest.raises(DataError, match="leaves the catalogue folder"):
        read_catalogue(folder, ["title"], ["image"])


def test_missing_text_and_image_are_none(tmp_path: Path) -> None:
    folder = _catalogue(tmp_path, ["a.png", "", "c.png", "d.png", "e.png", "f.png"], ["t0", "", "t2", "t3", "t4", "t5"])
    cat = read_catalogue(folder, ["title", "text"], ["image_hr", "image"])
    assert cat.texts[1] is None and cat.texts[0] == "t0."
    assert cat.image_paths[1] is None and cat.image_paths[0] == (folder / "a.png").absolute()


def test_first_non_empty_image_column_wins(tmp_path: Path) -> None:
    folder = write_inter(tmp_path / "two", tiny_rows())
    lines = ["itemID\ttext\timage_hr\timage"] + [f"{i}\tt\t{'hr.png' if i % 2 else ''}\tlo.png" for i in range(6)]
    (folder / "items.tsv").write_text("\n".join(lines) + "\n")
    cat = read_catalogue(folder, ["text"], ["image_hr", "image"])
    assert [p.name for p in cat.image_paths] == ["lo.png", "hr.png"] * 3


def test_item_ids_must_be_complete(tmp_path: Path) -> None:
    folder = write_inter(tmp_path / "ids", tiny_rows())
    (folder / "items.tsv").write_text("itemID\ttext\timage\n0\ta\t\n2\tb\t\n")
    with pytest.raises(DataError, match="itemIDs must be 0..1"):
        read_catalogue(folder, ["text"], ["image"])


def test_missing_items_file(tmp_path: Path) -> None:
    folder = write_inter(tmp_path / "noitems", tiny_rows())
    with pytest.raises(DataError, match="items.tsv: missing"):
        read_catalogue(folder, ["text"], ["image"])

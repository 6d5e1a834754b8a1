"""The raw catalogue format: interactions plus ``items.tsv`` with item text and image paths.

```
<catalogue>/
  <name>.inter     interactions, as in the data layer (userID, itemID[, x_label, ...])
  items.tsv        itemID (0..n-1, each once), text columns, image path columns
  images/...       image files, paths relative to the catalogue folder
```
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from mdrchca.data.dataset import find_inter_file, integer_column, read_interactions, read_tsv
from mdrchca.errors import DataError


@dataclass
class Catalogue:
    """Item text and image paths, row i = item i (``None`` where an item has no text / image)."""

    root: Path
    inter_file: Path
    texts: list[str | None]
    image_paths: list[Path | None]

    @property
    def n_items(self) -> int:
        return len(self.texts)


def _cell(value: object) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return str(value).strip()


def safe_image_path(root: Path, relative: str, items_file: Path, item: int) -> Path:
    """Resolve an image path inside the catalogue folder; absolute paths and ``..`` are rejected."""
    posix = PurePosixPath(relative.replace("\\", "/"))
    if posix.is_absolute() or relative.startswith(("/", "\\")) or ":" in posix.parts[0] or ".." in posix.parts:
        raise DataError(
            f"{items_file}: image path {relative!r} of item {item} leaves the catalogue folder; "
            "use a path relative to the catalogue, without '..'"
        )
    # Symbolic links inside the catalogue are the owner's choice and are followed.
    return root.absolute() / Path(*posix.parts)


def read_catalogue(root: str | Path, text_columns: list[str], image_columns: list[str]) -> Catalogue:
    """Read ``items.tsv`` (checking ids and paths) and locate the interactions file."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: catalogue folder not found; pass an existing folder to --catalogue")
    items_file = root / "items.tsv"
    if not items_file.is_file():
        raise DataError(f"{items_file}: missing; a catalogue needs items.tsv with itemID, text and image columns")
    inter_file = find_inter_file(root)
    frame = read_tsv(items_file, "items.tsv")
    if "itemID" not in frame.columns:
        raise DataError(f"{items_file}: missing column itemID (found: {', '.join(frame.columns)})")
    if frame.empty:
        raise DataError(f"{items_file}: has a header but no items; add one line per item")
    ids = integer_column(frame, "itemID", items_file)
    if sorted(ids.tolist()) != list(range(len(ids))):
        raise DataError(f"{items_file}: itemIDs must be 0..{len(ids) - 1}, each exactly once; remap them first")
    frame = frame.iloc[np.argsort(ids)].reset_index(drop=True)
    texts_present = [c for c in text_columns if c in frame.columns]
    if not texts_present:
        raise DataError(
            f"{items_file}: none of the text columns {', '.join(text_columns)} is present; set text_columns"
        )
    images_present = [c for c in image_columns if c in frame.columns]
    if not images_present:
        raise DataError(
            f"{items_file}: none of the image columns {', '.join(image_columns)} is present; set image_columns"
        )
    interactions = read_interactions(inter_file)
    if int(interactions["itemID"].max()) >= len(frame):
        raise DataError(
            f"{inter_file}: itemID {int(interactions['itemID'].max())} has no row in {items_file} ({len(frame)} items)"
        )

    texts: list[str | None] = []
    images: list[Path | None] = []
    for i, row in frame.iterrows():
        parts = [_cell(row[c]) for c in texts_present]
        joined = ". ".join(p.rstrip(".") for p in parts if p)
        texts.append(joined + "." if joined else None)
        path = next((_cell(row[c]) for c in images_present if _cell(row[c])), "")
        images.append(safe_image_path(root, path, items_file, int(i)) if path else None)
    return Catalogue(root=root, inter_file=inter_file, texts=texts, image_paths=images)

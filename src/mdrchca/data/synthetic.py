"""The bundled multimodal catalogue: a small, seeded generator whose right answers are known.

Items are coloured shapes with a surface pattern and a material. Each item has

* a text (title plus a description made of comma-separated phrases naming its attributes),
* a procedurally drawn image showing its colour, shape and pattern,
* interactions from users whose preferences are over those attributes.

A known share of items is *mismatched*: their image shows a different colour and shape than their text
(and than what drives the interactions), as when a catalogue links the wrong photo. The ground truth is
written beside the data (``ground_truth.tsv``), so a denoising model can be checked against it.

The output is a raw catalogue (``items.tsv`` + ``images/``) and an MMRec interactions file with a
per-user 8:1:1 ``x_label`` split, in one folder.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

from mdrchca.config import NON_NEGATIVE, UNIT, Range, check_options
from mdrchca.data.split import random_split
from mdrchca.errors import DataError
from mdrchca.io import atomic_folder

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (210, 40, 40),
    "orange": (240, 140, 20),
    "yellow": (235, 215, 40),
    "green": (40, 160, 60),
    "blue": (40, 80, 210),
    "purple": (130, 50, 170),
    "pink": (240, 120, 190),
    "brown": (120, 75, 35),
}
SHAPES = ("circle", "square", "triangle", "star", "cross", "ring")
PATTERNS = ("plain", "striped", "dotted", "checked")
MATERIALS = ("cotton", "wooden", "plastic", "metal", "glass", "leather")
FILLERS = (
    "a lovely gift",
    "easy to clean",
    "great value",
    "ships in two days",
    "loved by families",
    "classic design",
    "fits any room",
    "limited edition",
)

GENERATOR_VERSION = 1


@dataclass(frozen=True)
class SyntheticSpec:
    """Parameters of the bundled catalogue; the defaults are the bundled dataset."""

    n_users: Annotated[int, Range(10)] = 3000
    n_items: Annotated[int, Range(10)] = 1000
    mismatch_rate: Annotated[float, UNIT] = 0.1
    mean_interactions: Annotated[float, Range(3)] = 20.0
    image_size: Annotated[int, Range(16)] = 96
    preference_strength: Annotated[float, NON_NEGATIVE] = 2.5
    seed: int = 2024

    def __post_init__(self) -> None:
        check_options(self)

    def fingerprint(self) -> str:
        text = json.dumps({**asdict(self), "version": GENERATOR_VERSION}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


def _item_attributes(rng: np.random.Generator, n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "colour": rng.choice(list(COLOURS), size=n),
            "shape": rng.choice(SHAPES, size=n),
            "pattern": rng.choice(PATTERNS, size=n, p=[0.4, 0.2, 0.2, 0.2]),
            "material": rng.choice(MATERIALS, size=n),
        }
    )


def _describe(rng: np.random.Generator, colour: str, shape: str, pattern: str, material: str) -> tuple[str, str]:
    title = f"{pattern.capitalize()} {colour} {shape}" if pattern != "plain" else f"{colour.capitalize()} {shape}"
    phrases = [
        f"{'an' if colour[0] in 'aeiou' else 'a'} {colour} {shape}",
        f"with a {pattern} surface" if pattern != "plain" else "with a smooth plain surface",
        f"made of {material}",
    ]
    rng.shuffle(phrases)
    phrases += list(rng.choice(FILLERS, size=2, replace=False))
    return title, ", ".join(phrases) + "."


def draw_item_image(colour: str, shape: str, pattern: str, size: int, rng: np.random.Generator) -> Image.Image:
    """Draw one item: a jittered shape of ``colour`` on a light background, with ``pattern`` on it."""
    background = tuple(int(v) for v in rng.integers(215, 256, size=3))
    image = Image.new("RGB", (size, size), background)
    draw = ImageDraw.Draw(image)
    fill = tuple(int(np.clip(c + rng.integers(-20, 21), 0, 255)) for c in COLOURS[colour])
    margin = size * rng.uniform(0.12, 0.22)
    cx, cy = size / 2 + rng.uniform(-size * 0.06, size * 0.06, size=2)
    r = size / 2 - margin
    box = (cx - r, cy - r, cx + r, cy + r)
    if shape == "circle":
        draw.ellipse(box, fill=fill)
    elif shape == "ring":
        draw.ellipse(box, fill=fill)
        inner = r * 0.5
        draw.ellipse((cx - inner, cy - inner, cx + inner, cy + inner), fill=background)
    elif shape == "square":
        draw.rectangle(box, fill=fill)
    elif shape == "triangle":
        draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=fill)
    elif shape == "star":
        angles = np.linspace(-np.pi / 2, 1.5 * np.pi, 11)[:-1]
        radii = np.where(np.arange(10) % 2 == 0, r, r * 0.45)
        draw.polygon([(cx + q * np.cos(a), cy + q * np.sin(a)) for a, q in zip(angles, radii, strict=True)], fill=fill)
    elif shape == "cross":
        w = r * 0.38
        draw.rectangle((cx - w, cy - r, cx + w, cy + r), fill=fill)
        draw.rectangle((cx - r, cy - w, cx + r, cy + w), fill=fill)
    else:  # pragma: no cover - the attribute lists are closed
        raise ValueError(shape)
    mask = Image.new("L", (size, size), 0)
    mask_draw = ImageDraw.Draw(mask)
    overlay = Image.new("RGB", (size, size), (255, 255, 255))
    step = max(4, size // 8)
    if pattern == "striped":
        for x in range(0, size, step):
            mask_draw.rectangle((x, 0, x + step // 3, size), fill=255)
    elif pattern == "dotted":
        for x in range(step // 2, size, step):
            for y in range(step // 2, size, step):
                mask_draw.ellipse((x - step / 5, y - step / 5, x + step / 5, y + step / 5), fill=255)
    elif pattern == "checked":
        for x in range(0, size, step):
            for y in range(0, size, step):
                if (x // step + y // step) % 2 == 0:
                    mask_draw.rectangle((x, y, x + step - 1, y + step - 1), fill=160)
    if pattern != "plain":
        shape_mask = Image.eval(
            Image.fromarray((np.asarray(image) != np.asarray(background)).any(-1).astype(np.uint8) * 255), lambda v: v
        )
        combined = Image.fromarray(np.minimum(np.asarray(mask), np.asarray(shape_mask)))
        image = Image.composite(overlay, image, combined)
    noise = rng.normal(0, 6, size=(size, size, 3))
    pixels = np.clip(np.asarray(image, dtype=np.float32) + noise, 0, 255).astype(np.uint8)
    return Image.fromarray(pixels)


def generate(out_dir: str | Path, spec: SyntheticSpec | None = None) -> Path:
    """Write the catalogue to ``out_dir`` (atomically: built in a temporary folder, then renamed)."""
    spec = spec or SyntheticSpec()
    out_dir = Path(out_dir)
    if out_dir.is_file() or (out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / "SPEC.json").is_file()):
        raise DataError(
            f"{out_dir}: exists and is not a generated catalogue (no SPEC.json); choose a new or empty --out folder"
        )
    rng = np.random.default_rng(spec.seed)
    items = _item_attributes(rng, spec.n_items)
    mismatched, image_attrs = _mismatched_images(rng, spec, items)
    inter = _interactions(rng, spec, items)
    with atomic_folder(out_dir, replace=True) as tmp:
        _write_catalogue(tmp, out_dir.name, rng, spec, items, image_attrs, mismatched, inter)
    return out_dir


def _mismatched_images(rng: np.random.Generator, spec: SyntheticSpec, items: pd.DataFrame):
    """Which items are mismatched (their image shows another colour and another shape than the text says) and
    the attributes each image shows."""
    n_mismatch = int(round(spec.mismatch_rate * spec.n_items))
    mismatched = np.zeros(spec.n_items, dtype=bool)
    mismatched[rng.choice(spec.n_items, size=n_mismatch, replace=False)] = True
    image_attrs = items[["colour", "shape", "pattern"]].copy()
    for i in np.flatnonzero(mismatched):
        image_attrs.loc[i, "colour"] = rng.choice([c for c in COLOURS if c != items["colour"][i]])
        image_attrs.loc[i, "shape"] = rng.choice([s for s in SHAPES if s != items["shape"][i]])
    return mismatched, image_attrs


def _interactions(rng: np.random.Generator, spec: SyntheticSpec, items: pd.DataFrame) -> pd.DataFrame:
    """Each user's interactions, drawn without replacement by utility (sparse preference weights over each
    attribute value: a few favourites each) plus log popularity and Gumbel noise; split 8:1:1 per user."""

    def preferences(values: tuple[str, ...] | list[str], n_fav: int) -> np.ndarray:
        weights = np.full((spec.n_users, len(values)), -0.5)
        for u in range(spec.n_users):
            weights[u, rng.choice(len(values), size=n_fav, replace=False)] = 1.0
        return weights

    colour_idx = items["colour"].map({c: k for k, c in enumerate(COLOURS)}).to_numpy()
    shape_idx = items["shape"].map({s: k for k, s in enumerate(SHAPES)}).to_numpy()
    pattern_idx = items["pattern"].map({p: k for k, p in enumerate(PATTERNS)}).to_numpy()
    material_idx = items["material"].map({m: k for k, m in enumerate(MATERIALS)}).to_numpy()
    utility = (
        preferences(list(COLOURS), 2)[:, colour_idx]
        + preferences(SHAPES, 2)[:, shape_idx]
        + 0.6 * preferences(PATTERNS, 1)[:, pattern_idx]
        + 0.4 * preferences(MATERIALS, 2)[:, material_idx]
    )
    popularity = rng.lognormal(0.0, 0.8, size=spec.n_items)
    logits = spec.preference_strength * utility + np.log(popularity)[None, :]
    extra = rng.negative_binomial(2, 2 / (2 + spec.mean_interactions - 5), size=spec.n_users)
    n_per_user = np.clip(5 + extra, 5, spec.n_items // 4)
    gumbel = rng.gumbel(size=logits.shape)
    ranked = np.argsort(-(logits + gumbel), axis=1)
    users = np.repeat(np.arange(spec.n_users), n_per_user)
    chosen = np.concatenate([ranked[u, : n_per_user[u]] for u in range(spec.n_users)])
    labels = random_split(users, (0.8, 0.1, 0.1), seed=spec.seed)
    return pd.DataFrame({"userID": users, "itemID": chosen, "x_label": labels}).sort_values(["userID", "itemID"])


def _write_catalogue(
    tmp: Path,
    name: str,
    rng: np.random.Generator,
    spec: SyntheticSpec,
    items: pd.DataFrame,
    image_attrs: pd.DataFrame,
    mismatched: np.ndarray,
    inter: pd.DataFrame,
) -> None:
    """Images, ``<name>.inter``, ``items.tsv``, ``ground_truth.tsv`` and ``SPEC.json`` into ``tmp``."""
    (tmp / "images").mkdir()
    titles, texts, paths = [], [], []
    for i in range(spec.n_items):
        title, text = _describe(rng, *items.loc[i, ["colour", "shape", "pattern", "material"]])
        titles.append(title)
        texts.append(text)
        img = draw_item_image(*image_attrs.loc[i, ["colour", "shape", "pattern"]], spec.image_size, rng)
        rel = f"images/{i}.png"
        img.save(tmp / rel, optimize=False)
        paths.append(rel)
    inter.to_csv(tmp / f"{name}.inter", sep="\t", index=False)
    pd.DataFrame({"itemID": np.arange(spec.n_items), "title": titles, "text": texts, "image": paths}).to_csv(
        tmp / "items.tsv", sep="\t", index=False
    )
    truth = items.assign(
        itemID=np.arange(spec.n_items),
        image_colour=image_attrs["colour"],
        image_shape=image_attrs["shape"],
        image_pattern=image_attrs["pattern"],
        mismatched=mismatched.astype(int),
    )
    columns = ["itemID", "colour", "shape", "pattern", "material", "image_colour", "image_shape", "image_pattern"]
    truth[[*columns, "mismatched"]].to_csv(tmp / "ground_truth.tsv", sep="\t", index=False)
    manifest = {**asdict(spec), "version": GENERATOR_VERSION, "fingerprint": spec.fingerprint()}
    (tmp / "SPEC.json").write_text(json.dumps(manifest, indent=2))


def data_home() -> Path:
    """Where generated datasets are cached: ``$MDRCHCA_DATA_HOME`` or ``~/.cache/mdrchca``."""
    return Path(os.environ.get("MDRCHCA_DATA_HOME", Path.home() / ".cache" / "mdrchca"))


def bundled_dataset_path(spec: SyntheticSpec | None = None) -> Path:
    """The bundled catalogue's folder, generated on first use (and again if the generator changed)."""
    spec = spec or SyntheticSpec()
    folder = data_home() / "synthetic"
    marker = folder / "SPEC.json"
    if marker.is_file():
        try:
            if json.loads(marker.read_text()).get("fingerprint") == spec.fingerprint():
                return folder
        except json.JSONDecodeError:
            pass
    return generate(folder, spec)

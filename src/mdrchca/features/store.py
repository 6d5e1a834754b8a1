"""On-disk store of token / region features: compact, memory-mappable, written atomically.

Layout, per modality, inside a dataset folder::

    features/<modality>/values.npy      [n_items, L, d]  float16 by default
    features/<modality>/mask.npy        [n_items, L]     bool, True = real token / region
    features/<modality>/phrase_ids.npy  [n_items, L]     int32, -1 off the mask (text only)
    features/<modality>/item.npy        [n_items, d]     float32 masked mean (item-level vector)
    features/<modality>/manifest.json   encoder, version, dims, counts, config and its hash

The manifest is written last: a folder without it is not a finished store. The item-level vectors are
also written as MMRec's ``<modality>_feat.npy`` beside the interactions.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

from mdrchca.data.features import load_npy, read_manifest
from mdrchca.errors import DataError
from mdrchca.io import atomic_folder, save_npy, write_json

ARRAYS = ("values", "mask", "phrase_ids")


def write_chunk(folder: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write one chunk's arrays into ``folder`` atomically (a temporary folder renamed at the end)."""
    with atomic_folder(folder, replace=True) as tmp:
        for name, array in arrays.items():
            np.save(tmp / f"{name}.npy", array, allow_pickle=False)


def read_chunk(folder: Path) -> dict[str, np.ndarray]:
    return {p.stem: np.load(p) for p in sorted(folder.glob("*.npy"))}


def fit_pca(
    values: np.ndarray, mask: np.ndarray, dim: int, seed: int = 0, max_rows: int = 100_000
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and the top-``dim`` principal directions ``[d, dim]`` of the real tokens / regions.

    Fitted on at most ``max_rows`` rows drawn with ``seed``; each direction's sign is fixed (largest
    absolute coordinate positive) so the result is reproducible.
    """
    rows = values[mask].astype(np.float64)
    if len(rows) == 0:
        raise DataError("no token or region to fit PCA on: every item lacks this modality")
    if dim > rows.shape[1]:
        raise DataError(f"pca_dim {dim} is larger than the feature dimension {rows.shape[1]}")
    if len(rows) > max_rows:
        rows = rows[np.random.default_rng(seed).choice(len(rows), max_rows, replace=False)]
    mean = rows.mean(0)
    cov = np.cov(rows - mean, rowvar=False)
    eigvals, eigvecs = np.linalg.eigh(cov)
    components = eigvecs[:, np.argsort(eigvals)[::-1][:dim]]
    signs = np.sign(components[np.abs(components).argmax(0), np.arange(dim)])
    return mean, components * signs


def finalize(
    work: Path, target: Path, n_chunks: int, dtype: str, pca_dim: int, manifest: dict[str, Any], mmrec_file: Path
) -> None:
    """Merge the chunks in ``work`` into the store at ``target``, then write the MMRec vector file."""
    parts = [read_chunk(work / f"chunk-{c:06d}") for c in range(n_chunks)]
    merged = {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
    values, mask = merged["values"].astype(np.float32), merged["mask"].astype(bool)
    raw_dim = values.shape[-1]
    if pca_dim:
        mean, components = fit_pca(values, mask, pca_dim)
        values = ((values - mean) @ components).astype(np.float32)
        values[~mask] = 0.0
    stored = values.astype(np.dtype(dtype))
    weights = mask[..., None].astype(np.float32)
    item = (stored.astype(np.float32) * weights).sum(1) / np.maximum(weights.sum(1), 1.0)
    target.mkdir(parents=True, exist_ok=True)
    (target / "manifest.json").unlink(missing_ok=True)  # the store is unfinished until the manifest is back
    save_npy(target / "values.npy", stored)
    save_npy(target / "mask.npy", mask)
    if "phrase_ids" in merged:
        save_npy(target / "phrase_ids.npy", merged["phrase_ids"].astype(np.int32))
    save_npy(target / "item.npy", item.astype(np.float32))
    lengths = mask.sum(1)
    counts: dict[str, Any] = {
        "items": int(len(mask)),
        "items_missing": int((lengths == 0).sum()),
        "length_mean": round(float(lengths[lengths > 0].mean()) if (lengths > 0).any() else 0.0, 4),
        "length_max": int(lengths.max()),
    }
    if "phrase_ids" in merged:
        phrases = merged["phrase_ids"].max(1) + 1
        present = phrases[lengths > 0]
        counts.update(
            phrases_mean=round(float(present.mean()) if len(present) else 0.0, 4), phrases_max=int(phrases.max())
        )
    write_json(
        target / "manifest.json",
        {
            **manifest,
            "raw_dim": int(raw_dim),
            "dim": int(stored.shape[-1]),
            "max_length": int(stored.shape[1]),
            "dtype": dtype,
            "pca_dim": pca_dim,
            "counts": counts,
        },
    )
    save_npy(mmrec_file, item.astype(np.float32))


def reduce_store(source: Path, target: Path, pca_dim: int, dtype: str = "float16") -> None:
    """Write a PCA-reduced copy of a finished store (fitted on its real tokens / regions), updating the
    manifest and the MMRec item-vector file beside the target store."""
    manifest = read_manifest(source)
    if manifest is None:
        raise DataError(f"{source}: not a finished feature store (no manifest.json)")
    work = target.parent / f".reduce-{target.name}"
    shutil.rmtree(work, ignore_errors=True)
    fix = "rewrite the source store with mdrchca features"
    arrays = {k: np.array(load_npy(source / f"{k}.npy", fix)) for k in ARRAYS if (source / f"{k}.npy").exists()}
    write_chunk(work / "chunk-000000", arrays)
    config = dict(manifest.get("config", {}), pca_dim=pca_dim, dtype=dtype)
    meta = {
        k: v for k, v in manifest.items() if k not in ("counts", "dim", "raw_dim", "max_length", "dtype", "pca_dim")
    }
    meta["config"] = config
    meta["config_hash"] = f"{manifest.get('config_hash', '')}-pca{pca_dim}"
    modality = manifest.get("modality", source.name)
    finalize(work, target, 1, dtype, pca_dim, meta, target.parent.parent / f"{modality}_feat.npy")
    shutil.rmtree(work, ignore_errors=True)


def reduce_dataset(source: str | Path, out: str | Path, pca_dim: int, dtype: str = "float16") -> list[str]:
    """A copy of the dataset folder ``source`` in ``out`` with every token / region store reduced to ``pca_dim``
    dimensions by PCA (:func:`reduce_store`); the item-level ``*_feat.npy`` files are rewritten from the reduced
    stores, every other file is copied (the interactions file renamed after ``out``). Every store is checked
    before anything is written, and ``out`` appears only once complete. Returns the reduced modalities."""
    source, out = Path(source), Path(out)
    if pca_dim < 1:
        raise DataError(f"--pca-dim {pca_dim}: keep at least one dimension")
    if out.exists() and out.resolve() == source.resolve():
        raise DataError(f"{out}: --out is the dataset folder itself; name a new folder")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DataError(f"{out}: exists and is not an empty folder; name a new folder for the reduced dataset")
    stores = sorted(p.parent for p in (source / "features").glob("*/manifest.json"))
    if not stores:
        raise DataError(f"{source}: no feature stores (features/<modality>/manifest.json) to reduce")
    for store in stores:
        manifest = read_manifest(store) or {}
        dim, items = int(manifest.get("dim", 0)), int(manifest.get("n_items", 0))
        if pca_dim > dim:
            raise DataError(f"--pca-dim {pca_dim}: above the {dim} dimensions of {store}; choose at most {dim}")
        if pca_dim > items:
            raise DataError(f"--pca-dim {pca_dim}: above the {items} items of {store}; choose at most {items}")
    with atomic_folder(out, replace=out.exists()) as tmp:
        for item in source.iterdir():
            if item.is_file() and not item.name.endswith("_feat.npy"):
                name = f"{out.name}.inter" if item.suffix == ".inter" else item.name
                shutil.copyfile(item, tmp / name)
        for store in stores:
            reduce_store(store, tmp / "features" / store.name, pca_dim, dtype)
    return [store.name for store in stores]

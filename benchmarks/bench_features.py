"""Feature extraction throughput: the full pipeline against the bare encoder forward on the same batches.

Usage: python benchmarks/bench_features.py [CATALOGUE] [--items 128] [--batch-size 32]

Default catalogue: ../shared/datasets/ml100k-mm when present, else the bundled one. For each encoder
(MiniLM text, EfficientNet-Lite0 image at 256 px) the first ``--items`` items are extracted twice in the
same process (the encoder's one-time load is timed apart and not counted as overhead): once by
``extract_features`` (tokenising / image loading, phrase ids, chunked atomic writes,
merge, manifest) into a fresh folder, and once as the bare forward pass over the same pre-built batches.
Prints seconds per 100 items for both and their ratio (the pipeline's overhead).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

from mdrchca.features import FeatureConfig, extract_features
from mdrchca.features.catalogue import read_catalogue
from mdrchca.features.image import build_image_encoder, load_image
from mdrchca.features.text import TextEncoder


def subset_catalogue(source: Path, n: int, work: Path) -> Path:
    """A catalogue of the first n items (interactions filtered), images linked from the source."""
    target = work / "subset"
    target.mkdir(parents=True)
    items = pd.read_csv(source / "items.tsv", sep="\t", dtype=str, keep_default_na=False)
    items = items[items.itemID.astype(int) < n]
    items.to_csv(target / "items.tsv", sep="\t", index=False)
    inter = next(p for p in sorted(source.glob("*.inter")))
    frame = pd.read_csv(inter, sep="\t")
    frame[frame.itemID < n].to_csv(target / "subset.inter", sep="\t", index=False)
    for child in source.iterdir():
        if child.is_dir():
            (target / child.name).symlink_to(child.resolve())
    return target


def main() -> None:
    default = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "ml100k-mm"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("catalogue", nargs="?", default=str(default) if default.exists() else None)
    parser.add_argument("--items", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    if args.catalogue is None:
        from mdrchca.data.synthetic import bundled_dataset_path

        args.catalogue = str(bundled_dataset_path())
    work = Path(tempfile.mkdtemp())
    try:
        cat_dir = subset_catalogue(Path(args.catalogue), args.items, work)
        cfg = FeatureConfig(batch_size=args.batch_size, chunk_size=args.batch_size * 4)
        catalogue = read_catalogue(cat_dir, cfg.text_columns, cfg.image_columns)
        n = catalogue.n_items
        print(f"catalogue {args.catalogue}: {n} items, batch {args.batch_size}, {torch.get_num_threads()} threads")
        rows = []
        for modality in ("text", "image"):
            t0 = time.perf_counter()  # cold load first, so the pipeline's own load below is a warm one
            if modality == "text":
                encoder = TextEncoder(cfg.text_encoder, cfg.max_tokens, cfg.max_phrase_tokens)
            else:
                encoder = build_image_encoder(cfg.image_encoder, cfg.image_size)
            load = time.perf_counter() - t0
            t0 = time.perf_counter()
            extract_features(
                cat_dir,
                work / f"out-{modality}",
                FeatureConfig(**{**cfg.__dict__, "modalities": [modality]}),
                progress=False,
            )
            ours = time.perf_counter() - t0
            if modality == "text":
                batches = [
                    encoder.tokenize(catalogue.texts[b : b + args.batch_size]) for b in range(0, n, args.batch_size)
                ]
                t0 = time.perf_counter()
                for batch in batches:
                    encoder.forward(batch)
            else:
                paths = [p for p in catalogue.image_paths if p is not None]
                batches = [
                    torch.stack(
                        [
                            load_image(p, encoder.image_size, encoder.mean, encoder.std)
                            for p in paths[b : b + args.batch_size]
                        ]
                    )
                    for b in range(0, len(paths), args.batch_size)
                ]
                t0 = time.perf_counter()
                for batch in batches:
                    encoder.forward(batch)
            bare = time.perf_counter() - t0
            rows.append((modality, ours, bare, load))
        print("load = the encoder's cold load, paid once per run; pipeline = extract_features after it")
        print(f"{'modality':>8} | {'load s':>6} {'pipeline s/100':>14} {'bare fwd s/100':>14} {'ratio':>6}")
        for modality, ours, bare, load in rows:
            print(f"{modality:>8} | {load:6.2f} {100 * ours / n:14.2f} {100 * bare / n:14.2f} {ours / bare:6.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

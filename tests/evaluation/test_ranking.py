import torch

from mdrchca.evaluation.ranking import topk_items


def _reference(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Stable descending sort: ties keep index order, i.e. lower index first."""
    return torch.sort(scores, dim=1, descending=True, stable=True).indices[:, :k]


def test_matches_stable_sort_with_many_ties() -> None:
    gen = torch.Generator().manual_seed(0)
    scores = torch.randint(0, 4, (64, 50), generator=gen).float()
    for k in (1, 5, 20, 50):
        assert torch.equal(topk_items(scores, k), _reference(scores, k))


def test_matches_topk_without_ties() -> None:
    scores = torch.randn(32, 100, generator=torch.Generator().manual_seed(1))
    assert torch.equal(topk_items(scores, 10), torch.topk(scores, 10).indices)


def test_masked_items_rank_last_and_k_above_n() -> None:
    scores = torch.tensor([[0.5, -torch.inf, 0.7]])
    assert topk_items(scores, 5).tolist() == [[2, 0, 1]]


def test_tie_at_the_boundary() -> None:
    scores = torch.tensor([[1.0, 3.0, 2.0, 2.0, 2.0]])
    assert topk_items(scores, 3).tolist() == [[1, 2, 3]]

import math

import torch

from mdrchca.models.components.contrastive import in_batch_infonce, two_view_infonce


def test_in_batch_infonce_by_hand() -> None:
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    p = torch.tensor([[0.5, 0.5], [0.0, 2.0]])
    tau = 0.5
    expected = 0.0
    for k in range(2):
        logits = [float(a[k] @ p[j]) / tau for j in range(2)]
        expected += -(logits[k] - math.log(sum(math.exp(v) for v in logits))) / 2
    assert abs(in_batch_infonce(a, p, tau).item() - expected) < 1e-6


def test_two_view_infonce_by_hand() -> None:
    z1 = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    z2 = torch.tensor([[1.0, 0.1], [0.2, 1.0], [-1.0, 0.5]])
    tau = 0.5
    a = z1 / z1.norm(dim=1, keepdim=True)
    b = z2 / z2.norm(dim=1, keepdim=True)
    expected = 0.0
    for i in range(3):
        pos = math.exp(float(a[i] @ b[i]) / tau)
        cross = sum(math.exp(float(a[i] @ b[j]) / tau) for j in range(3))
        refl = sum(math.exp(float(a[i] @ a[j]) / tau) for j in range(3) if j != i)
        expected += -math.log(pos / (cross + refl)) / 3
    assert abs(two_view_infonce(z1, z2, tau).item() - expected) < 1e-5
    assert abs(two_view_infonce(z1, z2, tau, chunk=2).item() - expected) < 1e-5

"""The masked text side's top-k_s over every region against among its k_r candidates (session 20, a throwaway kept
beside its output): random weights [64 items, 64 tokens, 64 regions] with 10 candidates per token, k_s = 5, one thread.

    python docs/results/content-s20/topk_among_candidates.py
"""

import time

import torch

torch.set_num_threads(1)
B, Q, S, C, k = 64, 64, 64, 10, 5
w = torch.rand(B, Q, S)
cand = torch.stack([torch.randperm(S)[:C] for _ in range(B * Q)]).view(B, Q, C)
mask = torch.zeros(B, Q, S, dtype=torch.bool).scatter(-1, cand, True)
w = w * mask


def full():
    top = w.topk(k, dim=-1)
    return torch.zeros_like(w).scatter(-1, top.indices, top.values)


def comp():
    cw = w.gather(-1, cand)
    top = cw.topk(k, dim=-1)
    return torch.zeros_like(w).scatter(-1, cand.gather(-1, top.indices), top.values)


assert torch.equal(full(), comp())
for _ in range(3):
    for f in (full, comp):
        t = time.perf_counter()
        for _ in range(20):
            f()
        print(f.__name__, round((time.perf_counter() - t) / 20 * 1e3, 3), "ms")

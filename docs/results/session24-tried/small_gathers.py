"""Two rewrites measured alone and not made (each would change the fixed-seed bits for well under 1% of an epoch).

Usage: python docs/results/session24-tried/small_gathers.py

1. The phrase pooling (``alignment.phrase_pool``: a scatter-add of the tokens into their phrases) as a batched
   product with a [B, P, L] averaging matrix, on a pass chunk of ML-100K's shape (64 films, 63 token slots, 19
   phrases, d = 64): forward, and forward + backward.
2. L_conf's anchors read as ``x[item, token]`` (advanced indexing, whose backward is an accumulating index_put)
   against ``x.flatten(0, 1).index_select(0, item * L + token)`` (an index_add), 1,000 anchors of a step's 16 items.
One thread; microseconds per call, mean of 200-300 calls after a warm-up.
"""

from __future__ import annotations

import time

import torch


def per_call_us(fn, calls: int = 200) -> float:
    for _ in range(5):
        fn()
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls * 1e6


def main() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    B, L, P, d = 64, 63, 19, 64
    tokens = torch.randn(B, L, d, requires_grad=True)
    phrase_ids = torch.sort(torch.randint(0, P, (B, L)), -1).values
    phrase_ids[:, -5:] = -1

    def scattered() -> torch.Tensor:
        valid, index = phrase_ids >= 0, phrase_ids.clamp_min(0)
        sums = tokens.new_zeros(B, P, d).scatter_add_(
            1, index.unsqueeze(-1).expand(B, L, d), tokens * valid.unsqueeze(-1)
        )
        counts = tokens.new_zeros(B, P).scatter_add_(1, index, valid.to(tokens.dtype))
        return sums / counts.clamp_min(1).unsqueeze(-1)

    def as_product() -> torch.Tensor:
        members = (phrase_ids.unsqueeze(1) == torch.arange(P).view(1, P, 1)).to(tokens.dtype)  # [B, P, L]
        return (members / members.sum(-1, keepdim=True).clamp_min(1)) @ tokens

    upstream = torch.randn(B, P, d)
    print(f"phrase pooling: largest difference {(scattered() - as_product()).abs().max().item():.1e}")
    for name, fn in (("scatter-add", scattered), ("product", as_product)):
        with torch.no_grad():
            forward = per_call_us(fn)

        def both(fn=fn) -> None:
            tokens.grad = None
            fn().backward(upstream)

        print(f"  {name:12s} forward {forward:7.1f} us, forward + backward {per_call_us(both):7.1f} us")

    x = torch.randn(16, L, d, requires_grad=True)
    item, token = torch.randint(0, 16, (1000,)), torch.randint(0, L, (1000,))
    grad = torch.randn(1000, d)
    print("L_conf's anchors:")
    for name, read in (
        ("x[item, token]", lambda: x[item, token]),
        ("index_select", lambda: x.flatten(0, 1).index_select(0, item * L + token)),
    ):
        with torch.no_grad():
            forward = per_call_us(read, 300)

        def both(read=read) -> None:
            x.grad = None
            read().backward(grad)

        print(f"  {name:15s} forward {forward:6.1f} us, forward + backward {per_call_us(both, 300):6.1f} us")


if __name__ == "__main__":
    main()

"""The self-attention denoiser's explicit softmax against ``scaled_dot_product_attention``, alone, one thread.

Usage: python benchmarks/bench_denoiser_attention.py

One modality of one step's items: 32 items x 64 positions x 64 dims, a fifth of the positions padding and one
item empty. The explicit path is what ``SelfAttentionDenoiser`` computes (logits, mask, softmax, product); the
fused path gives an empty item its padding to attend to and zeroes it after, as a replacement would have to.
Prints the largest difference of the outputs and the median milliseconds of forward and forward + backward.
"""

from __future__ import annotations

import math
import statistics
import time

import torch
from torch.nn import functional as F


def main() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    batch, length, dim = 32, 64, 64
    x = torch.randn(batch, length, dim, requires_grad=True)
    mask = torch.rand(batch, length) > 0.2
    mask[0] = False
    query, key, value = (torch.nn.Linear(dim, dim, bias=False) for _ in range(3))

    def explicit() -> torch.Tensor:
        q, k, v = query(x), key(x), value(x)
        logits = (q @ k.transpose(1, 2) / math.sqrt(dim)).masked_fill(~mask.unsqueeze(1), -torch.inf)
        return (torch.softmax(logits, -1).nan_to_num(0.0) @ v) * mask.unsqueeze(-1)

    def fused() -> torch.Tensor:
        keys = mask | ~mask.any(1, keepdim=True)
        out = F.scaled_dot_product_attention(query(x), key(x), value(x), attn_mask=keys.unsqueeze(1))
        return out * mask.unsqueeze(-1)

    print(f"largest difference {(explicit() - fused()).abs().max().item():.2e}")
    for path in (explicit, fused):
        for backward in (False, True):

            def run(path=path, backward=backward) -> None:  # bound per loop
                if backward:
                    x.grad = None
                    path().sum().backward()
                else:
                    with torch.no_grad():
                        path()

            run()
            times = []
            for _ in range(50):
                start = time.perf_counter()
                run()
                times.append(time.perf_counter() - start)
            name = "forward + backward" if backward else "forward"
            print(f"{path.__name__:8s} {name:18s} {1e3 * statistics.median(times):.3f} ms")


if __name__ == "__main__":
    main()

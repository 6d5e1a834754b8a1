"""Session 23's ideas that were tried and not kept, re-measured on the session's final code (a throwaway kept beside
its output, not a benchmark). Each variant is put in by replacing one function of the package at run time and
taken out again, alternated round by round in one process on one model (ML-100K tokens, defaults, seed 0, one
thread): the pass over every film without gradients, ten forward + backward passes of 16 random films with L_conf,
and the alignment benchmark's step at 32 items x 64 tokens x 1,024 regions. Prints the speed-up (off / on) median by
round and its range, and the largest difference of the pass's content.

    PYTHONPATH=src python docs/results/session23-tried/tried.py --variant pooled_scatter --rounds 9

``network_topk``: the top-k_s by a running top-k of elementwise maxima and minima over the columns instead of
``torch.topk`` (ties at the k-th all survive). ``cosine_from_logits``: the candidates' head-averaged cosine read off
the scaled scores already gathered there, divided by each head's query and key norms, instead of a second product.
``pooled_scatter``: the short route's pooled aggregation by a scatter of a_w A^s_wc into one row per item instead of
through the [B, Q, S] spread of A^s.
"""

import argparse
import statistics
import sys
import time

import torch

sys.path.insert(0, "benchmarks")
import bench_alignment as bench  # noqa: E402
import mdrchca.models  # noqa: E402,F401
import mdrchca.models.mdrchca.alignment as A  # noqa: E402
import mdrchca.models.mdrchca.content as C  # noqa: E402
from mdrchca.config import Config  # noqa: E402
from mdrchca.data.dataset import load_dataset  # noqa: E402
from mdrchca.models.components.masking import fill_invalid_, mask_operand  # noqa: E402
from mdrchca.training.trainer import build_model  # noqa: E402


def kth_largest(values: torch.Tensor, k: int) -> torch.Tensor:
    top: list[torch.Tensor] = []
    for column in values.detach().movedim(-1, 0).contiguous().unbind(0):
        x = column
        for j, current in enumerate(top):
            top[j], x = torch.maximum(current, x), torch.minimum(current, x)
        if len(top) < k:
            top.append(x)
    return top[k - 1]


def screen_network_topk(self, logits, valid, heads_dim, mean_logits=True):
    heads = logits.shape[heads_dim]
    keep = mask_operand(valid, logits)
    mean = fill_invalid_(logits.sum(dim=heads_dim) / heads, keep, infinite=True) if mean_logits else None
    filled = fill_invalid_(logits, keep, dim=heads_dim)
    weights = A.row_softmax(filled).sum(dim=heads_dim).div_(heads).mul_(keep)
    k_s = min(self.k_s, weights.shape[-1])
    sparse = weights * (weights >= kth_largest(weights, k_s).unsqueeze(-1)) if k_s < weights.shape[-1] else weights
    if self.renormalize:
        sparse = sparse / sparse.sum(-1, keepdim=True).clamp_min(1e-12)
    return weights, sparse, mean


ORIGINAL_PRODUCT = A.candidate_product
STATE: dict = {}


def product_cosine_from_logits(a, b, candidates, left, scale=1.0):
    if left.__name__ == "heads":  # the scores: kept for the cosine, a copy given to the screen (which fills it)
        out = ORIGINAL_PRODUCT(a, b, candidates, left, scale)
        STATE.update(logits=out, q_norm=left(a).norm(dim=-1) * scale, k_norm=b.norm(dim=2))
        return out.clone() if out.requires_grad else out
    logits, q_norm, k_norm = STATE.pop("logits"), STATE.pop("q_norm"), STATE.pop("k_norm")  # the cosine
    B, H, Q, Cn = logits.shape
    at = k_norm.clamp_min(1e-12).gather(-1, candidates.reshape(B, 1, Q * Cn).expand(B, H, Q * Cn)).view(B, H, Q, Cn)
    inverse_q = 1.0 / (q_norm.clamp_min(1e-12 * scale).unsqueeze(-1) * H)
    return (logits / at * inverse_q).sum(1, keepdim=True)


def pooled_scatter(features, sources, value, sparse, cross_weights, feature_weights, denominator):
    if isinstance(sparse, tuple):
        weights, candidates, S = sparse
        B = weights.shape[0]
        per_source = weights.new_zeros(B, S).scatter_add_(
            1, candidates.reshape(B, -1), (cross_weights.unsqueeze(-1) * weights).reshape(B, -1)
        )
        pooled = value((per_source.unsqueeze(1) @ sources).squeeze(1))
        if feature_weights is not None:
            pooled = pooled + (feature_weights.unsqueeze(1) @ features).squeeze(1)
        return pooled / denominator
    return ORIGINAL_POOL(features, sources, value, sparse, cross_weights, feature_weights, denominator)


ORIGINAL_POOL = C.pooled_through_weights
ORIGINAL_WEIGHTS = A.CrossModalAttention.dense_weights
ORIGINAL_SCREEN = A.CrossModalAttention._screen


def weights_over_candidates(
    self, queries, query_mask, sources, source_mask, allowed=None, candidates=None, candidate_ok=None
):
    given = candidates is not None
    weights, sparse, _, cosine, candidates = self._dense_screen(
        queries, query_mask, sources, source_mask, allowed, False, candidates, candidate_ok
    )
    sparse = (sparse, candidates, sources.shape[1]) if given else sparse
    return A.SourceWeights(sparse, cosine, weights, candidates)


def switch(variant: str, on: bool) -> None:
    if variant == "network_topk":
        A.CrossModalAttention._screen = screen_network_topk if on else ORIGINAL_SCREEN
    elif variant == "cosine_from_logits":
        A.candidate_product = product_cosine_from_logits if on else ORIGINAL_PRODUCT
    else:
        A.CrossModalAttention.dense_weights = weights_over_candidates if on else ORIGINAL_WEIGHTS
        C.pooled_through_weights = pooled_scatter if on else ORIGINAL_POOL


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--variant", choices=("network_topk", "cosine_from_logits", "pooled_scatter"), required=True)
    parser.add_argument("--data", default="data/ml100k-64")
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = Config.load("mdrchca", overrides=["device=cpu", "num_threads=1"])
    data = load_dataset(args.data, config.data)
    torch.manual_seed(0)
    model = build_model(config, data).train()
    generator = torch.Generator().manual_seed(0)
    aligned_inputs = bench.make_inputs(32, 64, 1024, "cpu")

    def content_pass() -> float:
        with torch.no_grad():
            start = time.perf_counter()
            model.all_fused_content()
            return time.perf_counter() - start

    def steps() -> float:
        start = time.perf_counter()
        for _ in range(10):
            out = model.step_content(torch.randperm(data.n_items, generator=generator)[:16])
            (out.fused.square().sum() + model.contrastive_loss(out)).backward()
        return time.perf_counter() - start

    def alignment() -> float:
        start = time.perf_counter()
        bench.step(aligned_inputs, True)
        return time.perf_counter() - start

    works = {"pass": content_pass, "train": steps, "alignment n_p=1024": alignment}
    content = {}
    for on in (False, True):
        switch(args.variant, on)
        with torch.no_grad():
            content[on] = model.all_fused_content()
        for work in works.values():
            work()  # warm-up
    seconds = {name: {False: [], True: []} for name in works}
    for r in range(args.rounds):
        for on in (False, True) if r % 2 == 0 else (True, False):
            switch(args.variant, on)
            for name, work in works.items():
                seconds[name][on].append(work())
    switch(args.variant, False)
    print(
        f"{args.variant}, {args.rounds} rounds; largest difference of the pass's content "
        f"{float((content[True] - content[False]).abs().max()):.3g}"
    )
    for name in works:
        ratios = [off / on for off, on in zip(seconds[name][False], seconds[name][True], strict=True)]
        print(
            f"{name}: off {statistics.median(seconds[name][False]):.4f} s, "
            f"on {statistics.median(seconds[name][True]):.4f} s, "
            f"speed-up {statistics.median(ratios):.3f} ({min(ratios):.2f}-{max(ratios):.2f})"
        )


if __name__ == "__main__":
    main()

"""The alignment step (bench_alignment.step: hierarchical, 32 items, forward + backward) of an earlier commit against
this tree, alternated in one process (a throwaway kept beside its output). The earlier commit is imported as
``mdrchca_old`` (git archive REV src, imports renamed as benchmarks/ab_in_process.py does):

    PYTHONPATH=src:out/ab-align-old/src python docs/results/chunked-s23/ab_align.py 128 1024 15
"""

import importlib
import statistics
import sys
import time

import torch

sys.path.insert(0, "benchmarks")
import bench_alignment as b  # noqa: E402

torch.set_num_threads(1)
n_t, n_p, rounds = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
mods = {
    "old": importlib.import_module("mdrchca_old.models.mdrchca.alignment"),
    "new": importlib.import_module("mdrchca.models.mdrchca.alignment"),
}
inp = b.make_inputs(32, n_t, n_p, "cpu")
(ta, ra), tokens, token_mask, phrase_ids, regions, region_mask = inp


def step(A) -> None:
    positions = A.Positions(tokens, token_mask, phrase_ids, regions, region_mask)
    out = A.align(ta, ra, positions, A.AlignmentPlan(b.K_R, b.K_P, True, False, "auto"))
    (out.text.aligned.square().mean() + out.region.aligned.square().mean()).backward()


res = {k: [] for k in mods}
for k in mods:
    step(mods[k])  # warm-up
for r in range(rounds):
    for k in ("old", "new") if r % 2 == 0 else ("new", "old"):
        start = time.perf_counter()
        step(mods[k])
        res[k].append(time.perf_counter() - start)
ratios = [o / n for o, n in zip(res["old"], res["new"], strict=True)]
print(
    n_t,
    n_p,
    "old",
    round(statistics.median(res["old"]) * 1e3, 1),
    "new",
    round(statistics.median(res["new"]) * 1e3, 1),
    "speed-up",
    round(statistics.median(ratios), 3),
    round(min(ratios), 2),
    round(max(ratios), 2),
)

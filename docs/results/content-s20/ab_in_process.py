"""Session 20's content-pass changes timed in one process (a throwaway kept beside its output, not a benchmark):
the pass over every item without gradients (``model.all_fused_content``, ML-100K tokens, one thread) with the
session's two changes that touch it undone by patches ("before": the top-k_s over every region on the masked
text side, and the confidences' old re-masking and division before the maximum) and as committed ("after"),
alternated round by round so that the machine's drift falls on both.

    PYTHONPATH=src python docs/results/content-s20/ab_in_process.py --data data/ml100k-64 --rounds 9
"""

import argparse
import statistics
import time

import torch

import mdrchca.models.mdrchca.alignment as alignment
import mdrchca.models.mdrchca.content as content
from mdrchca.config import Config
from mdrchca.data import load_dataset
from mdrchca.models.mdrchca.confidence import image_confidence, text_confidence
from mdrchca.training import build_model


def text_confidence_before(values, query_mask, scale=1.0):
    scaled = values / scale  # the caller divided [B, L, C], then the re-masking
    best = scaled.masked_fill(~torch.isfinite(scaled), -torch.inf).amax(-1)
    conf = torch.sigmoid(best)
    return torch.where(query_mask & torch.isfinite(best), conf, torch.zeros_like(conf))


def image_confidence_before(sim, phrase_mask, region_mask, region_fine, tau=0.5, form="product", fine_scale=1.0):
    scaled = region_fine / fine_scale
    return image_confidence(
        sim, phrase_mask, region_mask, scaled.masked_fill(~torch.isfinite(scaled), -torch.inf), tau, form
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = Config.load("mdrchca", overrides=["device=cpu", "num_threads=1"])
    config.data.data_path = args.data
    torch.manual_seed(0)
    model = build_model(config, load_dataset(args.data, config.data)).eval()
    with_candidates = alignment.text_side_candidates

    def use(before: bool) -> None:
        alignment.text_side_candidates = (lambda *a: (with_candidates(*a)[0], None)) if before else with_candidates
        content.text_confidence = text_confidence_before if before else text_confidence
        content.image_confidence = image_confidence_before if before else image_confidence

    seconds = {"before": [], "after": []}
    results = {}
    for round_ in range(args.rounds + 1):  # round 0 warms both up
        for name in ("before", "after"):
            use(name == "before")
            start = time.perf_counter()
            results[name] = model.all_fused_content()
            if round_:
                seconds[name].append(time.perf_counter() - start)
    ratios = [b / a for b, a in zip(seconds["before"], seconds["after"], strict=True)]
    for name, values in seconds.items():
        print(name, "median s", round(statistics.median(values), 3), [round(v, 3) for v in values])
    print("speed-up by round", [round(r, 3) for r in ratios], "median", round(statistics.median(ratios), 3))
    print("largest content difference", float((results["before"] - results["after"]).abs().max()))


if __name__ == "__main__":
    main()

"""Session 21's L_conf gather timed in one process (a throwaway kept beside its output, not a benchmark): ML-100K
training epochs of MDR-CHCA with ``best_regions_of_other_items`` gathering the chosen regions by indexing (the code
before) and by ``index_select`` (as committed), alternated epoch by epoch on one trainer, one thread; also the
function's own seconds per epoch under each.

    PYTHONPATH=src python docs/results/masks-s21/ab_lconf_gather.py --data data/ml100k-64 --rounds 6
"""

import argparse
import json
import statistics
import time

import torch

import mdrchca.models.mdrchca.losses as losses
import mdrchca.models.mdrchca.model as model_module
from mdrchca.config import Config
from mdrchca.data import load_dataset
from mdrchca.training import Trainer

committed = losses.best_regions_of_other_items


def by_indexing(anchors, regions, region_mask, anchor_item):
    """The code before: the same search, the chosen rows gathered by advanced indexing."""
    B, R, d = regions.shape
    with torch.no_grad():
        search = (anchors @ regions.reshape(B * R, d).T).view(-1, B, R)
        best = search.masked_fill(~region_mask.unsqueeze(0), -torch.inf).max(-1)
        valid = torch.isfinite(best.values)
        valid[torch.arange(len(anchor_item), device=valid.device), anchor_item] = False
    flat = best.indices + R * torch.arange(B, device=regions.device)
    chosen = regions.reshape(B * R, d)[flat]
    sims = torch.einsum("nd,nbd->nb", anchors, chosen)
    return sims.masked_fill(~valid, 0.0), valid


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = Config.load("mdrchca", overrides=["device=cpu", "num_threads=1", f"epochs={2 * args.rounds + 2}"])
    config.data.data_path = args.data
    trainer = Trainer(config, load_dataset(args.data, config.data), progress=False)
    inside = {"before": 0.0, "after": 0.0}

    def timed(function, name):
        def wrapper(*a):
            start = time.perf_counter()
            out = function(*a)
            inside[name] += time.perf_counter() - start
            return out

        return wrapper

    seconds = {"before": [], "after": []}
    inner = {"before": [], "after": []}
    for round_ in range(args.rounds + 1):  # round 0 warms up
        for name, function in (("before", by_indexing), ("after", committed)):
            model_module.best_regions_of_other_items = timed(function, name)  # the name the model calls
            inside[name] = 0.0
            trainer.epoch += 1
            start = time.perf_counter()
            trainer.train_epoch()
            elapsed = time.perf_counter() - start
            trainer.evaluator.evaluate(trainer.model, "valid")
            if round_:
                seconds[name].append(elapsed)
                inner[name].append(inside[name])
    print(
        json.dumps(
            {
                "epoch_s": {k: [round(x, 3) for x in v] for k, v in seconds.items()},
                "search_forward_s": {k: [round(x, 3) for x in v] for k, v in inner.items()},
                "epoch_median_s": {k: round(statistics.median(v), 3) for k, v in seconds.items()},
                "speedup_by_round_median": round(
                    statistics.median(b / a for b, a in zip(seconds["before"], seconds["after"], strict=True)), 3
                ),
            }
        )
    )


if __name__ == "__main__":
    main()

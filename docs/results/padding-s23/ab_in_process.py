"""Session 23's change (a batch computes only the slots its items fill) timed in one process; the script of session
22 (docs/results/candidates-s22/), unchanged but for this line and the folder names below. Session 22's text:
Session 22's changes timed in one process (a throwaway kept beside its output, not a benchmark): the code before
a change imported as a second package (``mdrchca_old``: the parent commit's ``src`` with its imports renamed, see
below) and the code as committed, each building MDR-CHCA on the same data with the same seed, timed in turn round
by round so that the machine's drift falls on both. ``pass``: the pass over every item without gradients
(validation, the cache refresh); ``train``: ten forward + backward passes of the content of 16 items with L_conf (a
step's budget on ML-100K's 64 + 64 positions; by ``step_content`` where the code has it, else ``content``);
``epoch``: one training epoch of each model's trainer (its steps, L_conf included, then validation).

    git archive PARENT src | tar -x -C out/ab23 && mv out/ab23/src/mdrchca out/ab23/src/mdrchca_old
    grep -rl mdrchca out/ab23/src/mdrchca_old \\
        | xargs sed -i -E "s/\\bmdrchca\\./mdrchca_old./g; s/\\.mdrchca_old\\b/.mdrchca/g"
    PYTHONPATH=src:out/ab23/src python docs/results/padding-s23/ab_in_process.py --data data/ml100k-64 --mode pass
"""

import argparse
import importlib
import json
import statistics
import time

import torch


def build(package: str, data_path: str, epochs: int):
    config_module = importlib.import_module(f"{package}.config")
    data_module = importlib.import_module(f"{package}.data")
    training = importlib.import_module(f"{package}.training")
    config = config_module.Config.load("mdrchca", overrides=["device=cpu", "num_threads=1", f"epochs={epochs}"])
    config.data.data_path = data_path
    torch.manual_seed(0)
    trainer = training.Trainer(config, data_module.load_dataset(data_path, config.data), progress=False)
    return trainer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--mode", choices=("pass", "train", "epoch"), default="pass")
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    torch.set_num_threads(1)
    epochs = args.rounds + 2
    trainers = {"before": build("mdrchca_old", args.data, epochs), "after": build("mdrchca", args.data, epochs)}
    items = torch.arange(16)

    def once(trainer) -> float:
        model = trainer.model
        start = time.perf_counter()
        if args.mode == "pass":
            with torch.no_grad():
                fused = model._all_fused()
        elif args.mode == "train":
            for _ in range(10):
                out = getattr(model, "step_content", model.content)(items)  # a step's route where the code has one
                (out.fused.sum() + model.contrastive_loss(out)).backward()
            fused = out.fused
        else:
            trainer.epoch += 1
            trainer.train_epoch()
            trainer.evaluator.evaluate(model, "valid")
            fused = model.content_cache
        seconds = time.perf_counter() - start
        once.last[id(trainer)] = fused.detach().clone()
        return seconds

    once.last = {}
    for trainer in trainers.values():
        trainer.epoch = 0
        once(trainer)  # warm-up
    seconds = {name: [] for name in trainers}
    for _ in range(args.rounds):
        for name, trainer in trainers.items():
            seconds[name].append(once(trainer))
    by_round = [b / a for b, a in zip(seconds["before"], seconds["after"], strict=True)]
    before, after = (once.last[id(trainers[name])] for name in ("before", "after"))
    print(
        json.dumps(
            {
                "mode": args.mode,
                "rounds": args.rounds,
                "before_s": [round(x, 4) for x in seconds["before"]],
                "after_s": [round(x, 4) for x in seconds["after"]],
                "speedup_by_round": [round(x, 3) for x in by_round],
                "speedup_median": round(statistics.median(by_round), 3),
                "largest_difference_of_the_last_output": float((before - after).abs().max()),
            }
        )
    )


if __name__ == "__main__":
    main()

"""How a two-rank training ends: ``Trainer.close()`` against leaving the process group while DDP still holds it.

Usage: python benchmarks/close_order.py [--runs 20] [--orders close,leave-first] [--timeout 60] [--out FILE]

Each run starts ``torch.distributed.run --standalone --nproc-per-node 2`` (gloo, one thread a process) on a rank
script that trains LightGCN two epochs on the bundled catalogue (``parallel=batch``, so DDP wraps the loss) and
then ends in one of two orders:

- ``close``: ``trainer.close()`` (DDP freed, then ``leave_process_group``), what ``mdrchca.train`` does;
- ``leave-first``: ``leave_process_group()`` while the trainer's DDP wrapper still holds the group, freed after.

A run counts as failed when torchrun exits non-zero (an abort) or is still running after ``--timeout`` seconds
(a hang; it is killed). Prints one JSON line per order with the counts, and writes them to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from mdrchca.io import write_text

RANK_SCRIPT = """
import sys
import mdrchca.models
from mdrchca.config import Config
from mdrchca.data.dataset import load_dataset
from mdrchca.training.distributed import leave_process_group
from mdrchca.training.trainer import Trainer
config = Config.load("lightgcn", overrides=["num_threads=1", "epochs=2", "parallel=batch"])
trainer = Trainer(config, load_dataset(None, config.data), progress=False)
trainer.fit()
if sys.argv[1] == "close":
    trainer.close()
else:
    leave_process_group()
del trainer
"""


def one_run(order: str, timeout: float) -> str:
    """``ok``, ``failed`` (torchrun's exit status not 0) or ``hung`` (killed after ``timeout`` seconds)."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"]
    command += ["--no-python", sys.executable, "-c", RANK_SCRIPT, order]
    env = os.environ | {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        return "ok" if process.wait(timeout=timeout) == 0 else "failed"
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        return "hung"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--orders", default="close,leave-first")
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    rows = []
    for order in args.orders.split(","):
        outcomes = [one_run(order, args.timeout) for _ in range(args.runs)]
        row = {"order": order, "runs": args.runs, **{k: outcomes.count(k) for k in ("ok", "failed", "hung")}}
        print(json.dumps(row), flush=True)
        rows.append(row)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        write_text(args.out, "".join(json.dumps(row) + "\n" for row in rows))


if __name__ == "__main__":
    main()

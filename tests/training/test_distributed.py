"""One training on two processes (torchrun, gloo) against the same training on one."""

from __future__ import annotations

import csv
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mdrchca.training.distributed import Ranks, environment_rank, gather_strided_rows

ONE_THREAD = os.environ | {"OMP_NUM_THREADS": "1"}
BATCH = 2369  # the bundled catalogue's 49750 training pairs: 21 batches and one of a single triple


def test_shares_cover_a_batch_once_in_order_and_differ_by_at_most_one() -> None:
    assert [Ranks(r, 2).share(5) for r in range(2)] == [slice(0, 3), slice(3, 5)]
    assert [Ranks(r, 3).share(7) for r in range(3)] == [slice(0, 3), slice(3, 5), slice(5, 7)]
    assert [Ranks(r, 2).share(1) for r in range(2)] == [slice(0, 1), slice(1, 1)]  # a rank may get nothing
    assert Ranks().share(4) == slice(0, 4) and Ranks().is_main and not Ranks().distributed


def test_one_process_needs_no_process_group(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    rows = torch.arange(6.0).reshape(3, 2)
    assert gather_strided_rows(rows, 3, Ranks()) is rows
    monkeypatch.setenv("RANK", "3")  # without WORLD_SIZE a stray RANK means nothing
    assert environment_rank() == 0


STEP_SCRIPT = """
import sys, torch
import mdrchca.models
from mdrchca.config import Config
from mdrchca.data.dataset import load_dataset
from mdrchca.models.base import Batch
from mdrchca.training.trainer import Trainer
config = Config.load("bpr", overrides=["num_threads=1", "learning_rate=0.1"])
trainer = Trainer(config, load_dataset(None, config.data), progress=False)
batch = Batch(torch.tensor([0, 1, 2, 3, 4]), torch.tensor([5, 6, 7, 8, 9]), torch.tensor([10, 11, 12, 13, 14]))
loss = trainer.step(batch)
grads = {name: p.grad for name, p in trainer.model.named_parameters()}
torch.save({"loss": loss, "grads": grads, "after": trainer.model.state_dict()}, sys.argv[1])
trainer.close()
"""


def test_a_step_on_unequal_shares_has_the_whole_batch_gradient(tmp_path: Path) -> None:
    """Five triples on two ranks (shares of 3 and 2): the reduced gradient, the reported loss and the weights
    after the step equal one process's on all five. Without the share scaling the gradient is off by 20%."""
    import torch

    shared, one = _two_ranks_and_one(STEP_SCRIPT, tmp_path)
    for rank in range(2):
        assert shared[rank]["loss"] == pytest.approx(one["loss"], rel=1e-6)
        for name, grad in one["grads"].items():
            torch.testing.assert_close(shared[rank]["grads"][name], grad, rtol=1e-5, atol=1e-9)
        for name, value in one["after"].items():
            torch.testing.assert_close(shared[rank]["after"][name], value, rtol=1e-5, atol=1e-7)


CONTENT_SCRIPT = """
import sys, torch
import mdrchca.models
from mdrchca.config import Config
from mdrchca.data.dataset import load_dataset
from mdrchca.training.trainer import Trainer
config = Config.load("mdrchca", overrides=["num_threads=1", "content_chunk=7"])
trainer = Trainer(config, load_dataset(sys.argv[2], config.data), progress=False)
calls = []
if trainer.model._gather is not None:
    gather = trainer.model._gather
    trainer.model._gather = lambda rows, total: calls.append(len(rows)) or gather(rows, total)
fused = trainer.model.all_fused_content()
torch.save({"fused": fused, "rows": calls}, sys.argv[1])
trainer.close()
"""


def _two_ranks_and_one(script: str, tmp_path: Path, *arguments: str) -> tuple[list[dict], dict]:
    """Run ``script`` as two gloo ranks and as one process; each saves a dict to its first argument."""
    import socket

    import torch

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ranks = []
    for rank in range(2):
        env = ONE_THREAD | {
            "WORLD_SIZE": "2",
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
        }
        command = [sys.executable, "-c", script, str(tmp_path / f"rank{rank}.pt"), *arguments]
        ranks.append(subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True))
    for process in ranks:
        assert process.wait(timeout=300) == 0, process.stderr.read()[-3000:]
    alone = ONE_THREAD | {"WORLD_SIZE": "1"}
    command = [sys.executable, "-c", script, str(tmp_path / "one.pt"), *arguments]
    done = subprocess.run(command, env=alone, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    shared = [torch.load(tmp_path / f"rank{rank}.pt", weights_only=True) for rank in range(2)]
    return shared, torch.load(tmp_path / "one.pt", weights_only=True)


def test_mdrchca_splits_its_content_pass_across_ranks_and_gathers_every_item(
    small_featured: Path, tmp_path: Path
) -> None:
    """Scoring needs every item's content: each of two ranks computes half of the items (the strided rows
    rank, rank + 2, ...) and every rank ends with all of them, in order, equal to one process's."""
    import torch

    shared, one = _two_ranks_and_one(CONTENT_SCRIPT, tmp_path, str(small_featured))
    n_items = len(one["fused"])
    assert one["rows"] == []  # one process: no gather
    assert [s["rows"] for s in shared] == [[(n_items + 1) // 2], [n_items // 2]]
    for rank in range(2):
        torch.testing.assert_close(shared[rank]["fused"], one["fused"], rtol=1e-5, atol=1e-6)


LEAVE_SCRIPT = """
import gc, os, sys, torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
import mdrchca.models
from mdrchca.config import Config
from mdrchca.data.dataset import load_dataset
from mdrchca.training.api import train
from mdrchca.training.trainer import Trainer
config = Config.load("bpr", overrides=["num_threads=1", "epochs=1"])
trainer = Trainer(config, load_dataset(None, config.data), progress=False)
valid = trainer.fit().valid["recall@20"]
trainer.close()
wrappers = sum(isinstance(o, DistributedDataParallel) for o in gc.get_objects())
left = not dist.is_initialized()
kept = False
if int(os.environ["WORLD_SIZE"]) > 1:
    dist.init_process_group("gloo")
    train(config)
    kept = dist.is_initialized()
    dist.destroy_process_group()
torch.save({"valid": torch.tensor(valid), "wrappers": wrappers, "left": left, "kept": kept}, sys.argv[1])
"""


def test_a_finished_training_leaves_the_process_group_it_joined_and_keeps_one_it_did_not(tmp_path: Path) -> None:
    """A rank that exits with the process group still open can abort as the interpreter tears gloo down
    (SIGABRT after the run has finished, failing the whole torchrun), and a group left while DDP still holds
    it can hang when DDP is freed. ``Trainer.close`` frees DDP, then leaves the group it joined; the API does
    so once the training is done on every rank, and leaves a group the caller joined to the caller."""
    import torch

    shared, one = _two_ranks_and_one(LEAVE_SCRIPT, tmp_path)
    assert [(s["wrappers"], s["left"], s["kept"]) for s in shared] == [(0, True, True), (0, True, True)]
    assert (one["wrappers"], one["left"]) == (0, True)
    for rank in range(2):
        torch.testing.assert_close(shared[rank]["valid"], one["valid"], rtol=1e-3, atol=1e-4)


def _train(out: Path, nproc: int, *options: str) -> None:
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}"]
    command = [*launcher, "-m", "mdrchca", "train", "--no-progress", "--out", str(out), *options]
    done = subprocess.run(command, env=ONE_THREAD, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


def _log(run: Path) -> list[dict[str, float]]:
    with (run / "log.csv").open() as handle:
        return [{k: float(v) for k, v in row.items() if v} for row in csv.DictReader(handle)]


def _same_training(a: Path, b: Path) -> None:
    """The same losses (float tolerance: the gradient is summed in two halves) and validation metrics, and the
    same per-user test metrics in the same user order (the gathered evaluation puts users back in order)."""
    log_a, log_b = _log(a), _log(b)
    assert len(log_a) == len(log_b)
    for row_a, row_b in zip(log_a, log_b, strict=True):
        assert row_b["loss"] == pytest.approx(row_a["loss"], rel=1e-5)
        for key in (k for k in row_a if k.startswith("valid_")):
            assert row_b[key] == pytest.approx(row_a[key], abs=1e-3), key
    per_user_a = (a / "test_per_user.csv").read_text().splitlines()
    per_user_b = (b / "test_per_user.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in per_user_a] == [line.split(",")[0] for line in per_user_b]
    assert sum(x != y for x, y in zip(per_user_a, per_user_b, strict=True)) <= len(per_user_a) // 100


def test_two_processes_train_what_one_does_and_resume_on_one(tmp_path: Path) -> None:
    """Same global batch and seed: two gloo ranks match one process over four epochs; a run begun on two
    processes and resumed on one ends where four epochs on one process end. The batch size leaves a last
    batch of one triple, so one rank has no share of it and the shares of the others are odd: only the loss
    scaling makes that equal to one process (checked: without it the first epoch's loss differs by 5e-4)."""
    import mdrchca.models  # noqa: F401  (registers the models)
    from mdrchca.config import Config
    from mdrchca.data.dataset import load_dataset

    pairs = len(load_dataset(None, Config.load("lightgcn").data).train)
    assert pairs % BATCH == 1, f"the bundled catalogue changed ({pairs} training pairs): pick a new BATCH"
    options = ("--model", "lightgcn", "--set", "num_threads=1", "--set", f"batch_size={BATCH}")
    _train(tmp_path / "one", 1, *options, "--set", "epochs=4")
    _train(tmp_path / "two", 2, *options, "--set", "epochs=4")
    _same_training(tmp_path / "one", tmp_path / "two")
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == sorted(p.name for p in (tmp_path / "one").iterdir())

    _train(tmp_path / "two-then-one", 2, *options, "--set", "epochs=2")
    _train(tmp_path / "two-then-one", 1, "--resume", "--set", "epochs=4")
    _same_training(tmp_path / "one", tmp_path / "two-then-one")


def test_two_processes_split_by_columns_train_what_one_does_and_resume_on_any_number(tmp_path: Path) -> None:
    """``parallel=columns``: each of two ranks holds half of LightGCN's embedding columns and scores the whole
    batch on them; the losses and metrics are one process's (the scores are summed in two halves), the run
    folder holds the same files, and checkpoints hold whole tables: a run begun on two processes resumes on one
    and a run begun on one resumes on two, each ending where four epochs on one process end."""
    options = ("--model", "lightgcn", "--set", "num_threads=1", "--set", f"batch_size={BATCH}")
    columns = ("--set", "parallel=columns")
    _train(tmp_path / "one", 1, *options, "--set", "epochs=4")
    _train(tmp_path / "two", 2, *options, *columns, "--set", "epochs=4")
    _same_training(tmp_path / "one", tmp_path / "two")
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == sorted(p.name for p in (tmp_path / "one").iterdir())

    _train(tmp_path / "two-then-one", 2, *options, *columns, "--set", "epochs=2")
    _train(tmp_path / "two-then-one", 1, "--resume", "--set", "epochs=4")
    _same_training(tmp_path / "one", tmp_path / "two-then-one")
    _train(tmp_path / "one-then-two", 1, *options, "--set", "epochs=2")
    _train(tmp_path / "one-then-two", 2, "--resume", *columns, "--set", "epochs=4")
    _same_training(tmp_path / "one", tmp_path / "one-then-two")


def test_column_split_of_a_model_with_other_parameters_is_one_error_naming_the_option(
    tmp_path: Path, small_featured: Path
) -> None:
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"]
    command = [*launcher, "-m", "mdrchca", "train", "--no-progress", "--model", "vbpr", "--out", str(tmp_path / "r")]
    command += ["--data", str(small_featured), "--set", "parallel=columns", "--set", "epochs=1"]
    done = subprocess.run(command, env=ONE_THREAD, capture_output=True, text=True, timeout=600)
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if line.startswith("error") or "parallel=columns:" in line]
    assert errors and "vbpr cannot split" in errors[0] and "use parallel=batch" in errors[0], done.stderr[-2000:]
    assert not (tmp_path / "r").exists()  # refused before the run folder was made


def test_mdrchca_split_by_columns_trains_what_one_process_does_without_l_conf(
    tmp_path: Path, small_featured: Path
) -> None:
    """MDR-CHCA with ``parallel=columns``: the step's items divided among two ranks, their fresh content rows
    gathered (gradients summed back), each rank's columns propagated. Without L_conf (computed per rank on its
    own items, as with ``parallel=batch``) that is one process's training: the same losses and metrics."""
    options = ("--model", "mdrchca", "--data", str(small_featured), "--set", "num_threads=1")
    options += ("--set", "epochs=2", "--set", "conf_weight=0")
    _train(tmp_path / "one", 1, *options)
    _train(tmp_path / "two", 2, *options, "--set", "parallel=columns")
    _same_training(tmp_path / "one", tmp_path / "two")


def test_mdrchca_split_by_columns_with_l_conf_resumes_on_one_process(tmp_path: Path, small_featured: Path) -> None:
    options = ("--model", "mdrchca", "--data", str(small_featured), "--set", "num_threads=1")
    _train(tmp_path / "run", 2, *options, "--set", "epochs=1", "--set", "parallel=columns")
    _train(tmp_path / "run", 1, "--resume", "--set", "epochs=2")
    rows = _log(tmp_path / "run")
    assert [row["epoch"] for row in rows] == [1, 2]
    assert all(math.isfinite(row["loss"]) and row["theta_neg"] < row["theta_pos"] for row in rows)

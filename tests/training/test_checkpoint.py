"""Checkpoints hold tensors and plain types only; nothing loaded from one can run code."""

from __future__ import annotations

import os
import pickle
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mdrchca.training.checkpoint import (
    CheckpointError,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)


class Payload:
    """Pickles to a call that creates ``marker``: what a tampered checkpoint would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def plant_payload(path: Path, marker: Path) -> None:
    """Overwrite ``path`` with a torch checkpoint whose model entry runs code when unpickled unsafely."""
    torch.save({"model": {"weight": Payload(marker)}, "epoch": 1}, path)
    # the payload really does run under an unsafe load: the test below relies on it being live
    assert not marker.exists()


def test_the_planted_payload_is_live_under_an_unsafe_load(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    plant_payload(tmp_path / "evil.pt", marker)
    torch.load(tmp_path / "evil.pt", weights_only=False)
    assert marker.exists()


def test_load_refuses_a_payload_and_never_runs_it(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    plant_payload(tmp_path / "evil.pt", marker)
    with pytest.raises(CheckpointError, match=r"evil.pt: refused, it holds objects other than tensors"):
        load_checkpoint(tmp_path / "evil.pt")
    assert not marker.exists()


def test_rng_states_round_trip_through_a_safe_checkpoint(tmp_path: Path) -> None:
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    random.random(), np.random.normal(), torch.rand(1)  # leave a cached gaussian and non-initial positions
    save_checkpoint({"model": {}, "rng": rng_state()}, tmp_path / "c.pt")
    expected = (random.random(), np.random.normal(), np.random.rand(), torch.rand(3))
    random.seed(99)
    np.random.seed(99)
    torch.manual_seed(99)
    set_rng_state(load_checkpoint(tmp_path / "c.pt")["rng"])
    got = (random.random(), np.random.normal(), np.random.rand(), torch.rand(3))
    assert got[:3] == expected[:3]
    assert torch.equal(got[3], expected[3])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "checkpoint is empty"),
        (b"\x00\x01garbage" * 10, "not a readable checkpoint|refused"),
        (None, "not a readable checkpoint"),  # a real checkpoint cut in half
        (pickle.dumps([1, 2, 3], protocol=2), "not a readable checkpoint|not a checkpoint of this package"),
    ],
    ids=["empty", "random-bytes", "truncated", "plain-pickle"],
)
def test_broken_checkpoints_are_one_line_errors(tmp_path: Path, content: bytes | None, message: str) -> None:
    path = tmp_path / "c.pt"
    if content is None:
        save_checkpoint({"model": {"w": torch.zeros(1000)}}, path)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    else:
        path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message) as info:
        load_checkpoint(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_a_checkpoint_without_the_model_is_refused(tmp_path: Path) -> None:
    save_checkpoint({"epoch": 3}, tmp_path / "c.pt")
    with pytest.raises(CheckpointError, match="missing model"):
        load_checkpoint(tmp_path / "c.pt")


def test_save_leaves_no_temporary_when_it_fails(tmp_path: Path) -> None:
    with pytest.raises(Exception):  # noqa: B017 - whatever torch raises for an unpicklable object
        save_checkpoint({"model": {"f": lambda: 0}}, tmp_path / "c.pt")
    assert os.listdir(tmp_path) == []


def test_ctrl_c_during_checkpoint_saves_arrives_as_itself_and_leaves_nothing_half_written(tmp_path: Path) -> None:
    """Thirty real SIGINTs at random moments of repeated saves, in a child process: each arrives as a
    KeyboardInterrupt (torch's writer turned 7 of 40 into a RuntimeError before the save was serialised in
    memory and the write held, and once in session 16, under load, lost one, so the child looped until the
    timeout: the serialisation is held too now), the process never aborts, and the folder holds a loadable
    file and no temporary."""
    script = (
        "import random, signal, sys, torch\n"
        "from mdrchca.training.checkpoint import save_checkpoint\n"
        "state = {'model': {f'w{i}': torch.randn(200, 64) for i in range(6)}}\n"
        "random.seed(0)\n"
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"  # even if started with Ctrl-C ignored
        "signal.signal(signal.SIGALRM, lambda *a: signal.raise_signal(signal.SIGINT))\n"
        "for trial in range(30):\n"
        "    signal.setitimer(signal.ITIMER_REAL, random.uniform(0.0001, 0.005))\n"
        "    try:\n"
        "        while True:\n"
        "            save_checkpoint(state, sys.argv[1])\n"
        "    except BaseException as exc:\n"
        "        print(type(exc).__name__)\n"
    )
    target = tmp_path / "last.pt"
    done = subprocess.run([sys.executable, "-c", script, str(target)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["KeyboardInterrupt"] * 30, done.stdout
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]
    assert load_checkpoint(target)["model"]["w0"].shape == (200, 64)

"""The atomic-write helper: files appear whole, with the permissions a plain open would give."""

from __future__ import annotations

import os
import signal
import stat
from pathlib import Path

import pytest

from mdrchca.io import atomic_file, write_text, write_with


def test_atomic_writes_get_the_usual_permissions(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    os.umask(umask)
    write_text(tmp_path / "a.txt", "x")
    write_with(tmp_path / "b.txt", lambda p: p.write_text("y"))
    for name in ("a.txt", "b.txt"):
        mode = stat.S_IMODE((tmp_path / name).stat().st_mode)
        assert mode == 0o666 & ~umask, f"{name}: {oct(mode)}"


def test_a_ctrl_c_during_a_write_is_held_until_the_file_is_in_place(tmp_path: Path) -> None:
    """SIGINT mid-write: the new file is whole, no temporary is left, and the KeyboardInterrupt comes after."""
    target = tmp_path / "a.txt"
    target.write_text("old")

    def interrupted_writer(path: Path) -> None:
        path.write_text("new, first half ")
        signal.raise_signal(signal.SIGINT)
        with path.open("a") as handle:
            handle.write("and second half")

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # also under a suite started with it ignored
    try:
        with pytest.raises(KeyboardInterrupt):
            write_with(target, interrupted_writer)
        after = signal.getsignal(signal.SIGINT)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert target.read_text() == "new, first half and second half"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]
    assert after is signal.default_int_handler  # the handler from before the write is back


def test_an_error_in_a_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    target.write_text("old")
    with pytest.raises(OSError, match="disk full"), atomic_file(target) as handle:
        handle.write("new")
        raise OSError("disk full")
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]

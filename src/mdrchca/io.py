"""Atomic file writes: the one helper every part of the package writes files with.

Every write goes to a uniquely named temporary file (or folder) beside the target, is flushed and
``fsync``-ed, then renamed over the target (``os.replace``, atomic on one filesystem). A reader therefore sees
the old file or the new one, never half of one, and a failure (an exception, a full disk, a kill) leaves no
temporary behind except after a kill, where the next write of the same target does not trip over it (its
name is unique) and ``*.tmp`` litter can be removed safely.

A Ctrl-C that arrives during a file write is held until the write has ended: a ``KeyboardInterrupt`` raised
at an arbitrary point could otherwise land between creating the temporary file and the code that removes it,
or inside a library's writer that turns it into another error (``torch.save`` does: a ``RuntimeError``, which
a grid would record as a failed run instead of an interrupted one).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np


@contextlib.contextmanager
def interrupts_held() -> Iterator[None]:
    """Hold a Ctrl-C (SIGINT) that arrives inside the block and deliver it when the block ends.

    Only the main thread receives Python's signals, so elsewhere this does nothing. For short, all-or-nothing
    work (a file write), never for long work: the user waits for the block to end.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if received and previous is not signal.SIG_IGN:
            if callable(previous):
                previous(signal.SIGINT, None)
            else:  # SIG_DFL, or a handler set outside Python: let the signal do what it does there
                signal.raise_signal(signal.SIGINT)


@contextlib.contextmanager
def atomic_file(path: str | Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` for writing; on a clean exit it replaces ``path``.

    ``mode`` is ``"w"`` (text, ``encoding``) or ``"wb"``. On any exception the temporary file is removed and
    ``path`` is left as it was.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_file mode must be 'w' or 'wb', not {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with interrupts_held():
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, mode, encoding=encoding if mode == "w" else None) as handle:
                yield handle
                handle.flush()
                os.fsync(handle.fileno())
            _usual_permissions(tmp)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _process_umask() -> int:
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


_UMASK = _process_umask()  # read once at import: os.umask can only be read by setting it, which races threads


def _usual_permissions(path: str | Path) -> None:
    """Give a temporary file the permissions a plain ``open`` would (mkstemp makes it owner-only), so results
    written atomically can be read by the rest of a team as usual."""
    os.chmod(path, 0o666 & ~_UMASK)


def write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_file(path, "w") as handle:
        handle.write(text)


def write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_file(path, "wb") as handle:
        handle.write(data)


def write_json(path: str | Path, payload: Any) -> None:
    """Write ``payload`` as indented, key-sorted JSON atomically."""
    write_text(path, json.dumps(payload, indent=2, sort_keys=True) + "\n")


def save_npy(path: str | Path, array: np.ndarray) -> None:
    """``np.save`` (never pickled) to ``path`` atomically."""
    with atomic_file(path, "wb") as handle:
        np.save(handle, np.asarray(array), allow_pickle=False)


def write_with(path: str | Path, writer: Callable[[Path], None]) -> None:
    """Let ``writer`` write a file by name (for libraries that insist on a path: parquet, matplotlib), then
    move it into place atomically. The temporary name keeps ``path``'s suffix, which such writers read."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with interrupts_held():
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}")
        os.close(fd)
        try:
            writer(Path(tmp))
            _usual_permissions(tmp)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


@contextlib.contextmanager
def atomic_folder(path: str | Path, replace: bool = False) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``path``; on a clean exit it becomes ``path``.

    With ``replace`` an existing ``path`` is removed first (the short window between removal and rename is
    the only moment the target is absent); without it an existing ``path`` must not exist or be empty.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        yield tmp
        if path.exists() and replace:
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise

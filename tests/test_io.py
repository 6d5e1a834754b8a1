"""The atomic-write helper: files appear whole, with the permissions a plain open would give."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from mdrchca.io import write_text, write_with


def test_atomic_writes_get_the_usual_permissions(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    os.umask(umask)
    write_text(tmp_path / "a.txt", "x")
    write_with(tmp_path / "b.txt", lambda p: p.write_text("y"))
    for name in ("a.txt", "b.txt"):
        mode = stat.S_IMODE((tmp_path / name).stat().st_mode)
        assert mode == 0o666 & ~umask, f"{name}: {oct(mode)}"

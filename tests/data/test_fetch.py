"""Fetching images against a local HTTP server on the loopback address that fails, stalls, trickles and
serves things that are not images; a rerun fetches only what is missing."""

from __future__ import annotations

import io
import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image

from mdrchca.cli.main import cli
from mdrchca.data.fetch import FetchOptions, fetch_images

HITS: Counter[str] = Counter()


def _png(colour: tuple[int, int, int] = (200, 10, 10)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (12, 9), colour).save(buffer, "PNG")
    return buffer.getvalue()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:  # quiet
        pass

    def _send(self, status: int, body: bytes, kind: str = "image/png", length: int | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body) if length is None else length))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up on a stalled answer
            pass

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        HITS[self.path] += 1
        name = self.path.strip("/")
        if name.startswith("ok"):
            self._send(200, _png())
        elif name == "flaky":  # fails twice, then serves: retries with backoff get it
            self._send(503, b"busy", "text/plain") if HITS[self.path] <= 2 else self._send(200, _png((0, 0, 200)))
        elif name == "down":
            self._send(500, b"error", "text/plain")
        elif name == "missing":
            self._send(404, b"no", "text/plain")
        elif name == "html":
            self._send(200, b"<html>login</html>", "text/html")
        elif name == "garbage":
            self._send(200, b"\x89PNG but not really", "image/png")
        elif name == "huge":
            self._send(200, b"", "image/jpeg", length=10**9)
        elif name == "stall":  # no answer for longer than the timeout
            time.sleep(2.0)
            self._send(200, _png())
        elif name == "trickle":  # answers, then sends a byte at a time forever: the deadline ends it
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.end_headers()
            try:
                for _ in range(40):
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.1)
            except (BrokenPipeError, ConnectionResetError):
                pass
        elif name == "slow-drip":  # a Content-Length, then a byte every 0.2 s: never silent for a read timeout
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", "1000")
            self.end_headers()
            try:
                for _ in range(1000):
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.2)
            except (BrokenPipeError, ConnectionResetError):
                pass


@pytest.fixture
def server():
    HITS.clear()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


NAMES = ["ok1", "ok2", "flaky", "down", "missing", "html", "garbage", "huge", "stall", "trickle", None, "file"]


def make_catalogue(folder: Path, base: str) -> Path:
    folder.mkdir()
    urls = []
    for name in NAMES:
        urls.append("" if name is None else "file:///etc/passwd" if name == "file" else f"{base}/{name}")
    pd.DataFrame(
        {
            "itemID": range(len(NAMES)),
            "asin": [f"A{i}" for i in range(len(NAMES))],
            "title": "t",
            "image_url": urls,
            "image": "",
        }
    ).to_csv(folder / "items.tsv", sep="\t", index=False)
    return folder


OPTIONS = FetchOptions(workers=4, retries=2, backoff=0.05, timeout=0.5, deadline=1.5, max_bytes=100_000)


def test_fetch_counts_every_outcome_and_a_rerun_fetches_only_the_missing(server: str, tmp_path: Path) -> None:
    catalogue = make_catalogue(tmp_path / "cat", server)
    report = fetch_images(catalogue, OPTIONS, progress=False)
    assert (report.fetched, report.failed, report.missing, report.already_there) == (3, 8, 1, 0)
    reasons = {NAMES[int(k)]: v for k, v in report.failures.items()}
    assert reasons["down"] == "HTTP 500 after 2 retries"
    assert reasons["missing"] == "HTTP 404"
    assert reasons["html"] == "not an image (Content-Type text/html)"
    assert reasons["garbage"].startswith("does not decode as an image")
    assert reasons["huge"].startswith("larger than max_bytes")
    assert "timed out" in reasons["stall"]
    assert "deadline" in reasons["trickle"] or "timed out" in reasons["trickle"]
    assert reasons["file"].startswith("not an http(s) URL")
    assert HITS["/flaky"] == 3 and HITS["/down"] == 3  # two retries after the first try
    items = pd.read_csv(catalogue / "items.tsv", sep="\t", keep_default_na=False)
    assert items.image.tolist()[:3] == ["images/0.png", "images/1.png", "images/2.png"]
    assert (items.image[3:] == "").all()
    with Image.open(catalogue / "images" / "2.png") as img:
        assert img.getpixel((0, 0)) == (0, 0, 200)
    saved = json.loads((catalogue / "fetch_report.json").read_text())
    assert saved["fetched"] == 3 and saved["failures"][str(NAMES.index("missing"))] == "HTTP 404"
    assert not [p for p in (catalogue / "images").iterdir() if p.suffix == ".tmp"]

    HITS.clear()
    again = fetch_images(catalogue, OPTIONS, progress=False)
    assert (again.fetched, again.already_there, again.failed) == (0, 3, 8)
    assert HITS["/ok1"] == 0 and HITS["/flaky"] == 0 and HITS["/missing"] == 1


def test_fetch_command_prints_the_counts(server: str, tmp_path: Path) -> None:
    catalogue = make_catalogue(tmp_path / "cat", server)
    result = CliRunner().invoke(
        cli,
        [
            "data",
            "fetch-images",
            str(catalogue),
            "--workers",
            "4",
            "--retries",
            "0",
            "--timeout",
            "0.5",
            "--deadline",
            "1.5",
            "--max-bytes",
            "100000",
            "--no-progress",
        ],
    )
    assert result.exit_code == 0, result.output
    counts = json.loads(result.output.strip().splitlines()[-1])
    assert counts == {"fetched": 2, "already_there": 0, "failed": 9, "missing": 1}  # no retry: flaky fails too
    missing = CliRunner().invoke(cli, ["data", "fetch-images", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "catalogue folder not found" in missing.output


def test_fetch_options_are_range_checked_before_anything_is_fetched(tmp_path: Path) -> None:
    from mdrchca.errors import ConfigError

    with pytest.raises(ConfigError, match="'workers' must be >= 1, got 0"):
        fetch_images(tmp_path, FetchOptions(workers=0), progress=False)
    with pytest.raises(ConfigError, match="'timeout' must be > 0"):
        fetch_images(tmp_path, FetchOptions(timeout=0.0), progress=False)


def test_the_deadline_is_wall_clock_even_against_a_server_that_is_never_silent(server: str) -> None:
    """A server that sends one byte every 0.2 s under a Content-Length of 1,000 (200 s in all) never trips a
    0.5 s read timeout; the download still ends at its 1.5 s deadline."""
    from mdrchca.data.fetch import FetchError, _session, fetch_image

    started = time.monotonic()
    with pytest.raises(FetchError, match="deadline of 1.5 s"):
        fetch_image(_session(OPTIONS), f"{server}/slow-drip", OPTIONS)
    assert time.monotonic() - started < 3.0


def test_an_item_listed_twice_is_refused_before_any_download(tmp_path: Path) -> None:
    from mdrchca.errors import DataError

    folder = tmp_path / "cat"
    folder.mkdir()
    pd.DataFrame({"itemID": [0, 1, 1], "image_url": ["http://x/a", "http://x/b", "http://x/c"]}).to_csv(
        folder / "items.tsv", sep="\t", index=False
    )
    with pytest.raises(DataError, match="itemID 1 has more than one row"):
        fetch_images(folder, OPTIONS, progress=False)
    assert not (folder / "images").exists()

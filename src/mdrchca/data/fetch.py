"""Fetching a catalogue's item images from their URLs: retried, bounded, checked and resumable.

Each item's ``image_url`` (``items.tsv``) is fetched with ``requests`` and urllib3's ``Retry`` (exponential
backoff on connection errors and on 429 / 5xx answers), with a connect and read timeout and a whole-download
deadline (a server that trickles bytes cannot hold a worker), a size limit, a content type that must be an
image, and a decode check (Pillow opens and loads it). A good image is written atomically to
``images/<itemID>.<format>``; a rerun fetches only items without one. At the end ``items.tsv`` gets each
fetched item's image path (atomically), and ``fetch_report.json`` the counts: fetched, already there, failed
(with each failure's reason) and missing (no URL).
"""

from __future__ import annotations

import io
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any

import requests
from PIL import Image, UnidentifiedImageError
from requests.adapters import HTTPAdapter
from tqdm import tqdm
from urllib3.util.retry import Retry

from mdrchca.config import AT_LEAST_ONE, MAX_IMAGE_PIXELS, NON_NEGATIVE, POSITIVE, check_options
from mdrchca.data.amazon import read_items_for_fetch
from mdrchca.errors import DataError
from mdrchca.io import write_bytes, write_text

log = logging.getLogger(__name__)

FORMATS = {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "WEBP": "webp", "BMP": "bmp", "TIFF": "tif"}
REPORT_FILE = "fetch_report.json"
RETRIED_STATUSES = (429, 500, 502, 503, 504)


@dataclass
class FetchOptions:
    """Limits of one fetch run (each a ``mdrchca data fetch-images`` option)."""

    workers: Annotated[int, AT_LEAST_ONE] = 8
    """Concurrent downloads."""
    retries: Annotated[int, NON_NEGATIVE] = 3
    """Retries per image after the first try (connection errors, 429 and 5xx answers), with backoff."""
    backoff: Annotated[float, NON_NEGATIVE] = 0.5
    """Backoff factor: waits of backoff * 2^(n-1) seconds between tries."""
    timeout: Annotated[float, POSITIVE] = 10.0
    """Seconds to connect, and seconds the server may stay silent while sending."""
    deadline: Annotated[float, POSITIVE] = 60.0
    """Seconds one image's whole download may take."""
    max_bytes: Annotated[int, AT_LEAST_ONE] = 20_000_000
    """Largest image accepted, in bytes."""
    max_pixels: Annotated[int, AT_LEAST_ONE] = MAX_IMAGE_PIXELS
    """Largest image accepted, in pixels (decompression bombs)."""


@dataclass
class FetchReport:
    fetched: int = 0
    already_there: int = 0
    failed: int = 0
    missing: int = 0
    failures: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class FetchError(Exception):
    """One image could not be had; the message is the reason recorded in the report."""


def _session(options: FetchOptions) -> requests.Session:
    retry = Retry(
        total=options.retries,
        connect=options.retries,
        read=options.retries,
        status=options.retries,
        backoff_factor=options.backoff,
        status_forcelist=RETRIED_STATUSES,
        allowed_methods=frozenset({"GET"}),
        raise_on_status=False,
        respect_retry_after_header=True,
    )
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry, pool_connections=options.workers, pool_maxsize=options.workers)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = "mdrchca-fetch-images"
    return session


def fetch_image(session: requests.Session, url: str, options: FetchOptions) -> tuple[bytes, str]:
    """Download and check one image; returns (bytes, file extension) or raises :class:`FetchError`."""
    if not url.lower().startswith(("http://", "https://")):
        raise FetchError(f"not an http(s) URL: {url[:60]}")
    started = time.monotonic()
    try:
        with session.get(url, stream=True, timeout=(options.timeout, options.timeout)) as response:
            if response.status_code != 200:
                retried = response.status_code in RETRIED_STATUSES and options.retries > 0
                raise FetchError(
                    f"HTTP {response.status_code}" + (f" after {options.retries} retries" if retried else "")
                )
            kind = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if not kind.startswith("image/"):
                raise FetchError(f"not an image (Content-Type {kind or 'missing'})")
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > options.max_bytes:
                raise FetchError(f"larger than max_bytes ({declared} bytes)")
            body = _read_until(response, started, options)
    except requests.exceptions.RetryError:
        raise FetchError("gave up after retries (server errors)") from None
    except requests.exceptions.Timeout:
        raise FetchError(f"timed out ({options.timeout:g} s without data)") from None
    except requests.exceptions.RequestException as exc:
        reason = "read timed out" if "timed out" in str(exc).lower() else str(exc)[:100]
        raise FetchError(f"{exc.__class__.__name__}: {reason}") from None
    try:
        with Image.open(io.BytesIO(bytes(body))) as img:
            width, height = img.size
            if width * height > options.max_pixels:
                raise FetchError(f"{width}x{height} is above max_pixels")
            img.load()
            extension = FORMATS.get(img.format or "", "img")
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise FetchError(f"does not decode as an image ({exc.__class__.__name__})") from None
    return bytes(body), extension


def _read_until(response: requests.Response, started: float, options: FetchOptions) -> bytearray:
    """The body, read with a real wall-clock deadline: ``read1`` returns whatever has arrived (a trickling
    server cannot make one call wait for 64 KiB), the socket waits at most until the deadline, and the deadline
    is checked after every piece."""
    body = bytearray()
    raw = response.raw
    while True:
        left = options.deadline - (time.monotonic() - started)
        if left <= 0:
            raise FetchError(f"took longer than the deadline of {options.deadline:g} s")
        _set_read_timeout(raw, min(options.timeout, left))
        piece = raw.read1(65536, decode_content=True)
        if not piece:
            if time.monotonic() - started > options.deadline:
                raise FetchError(f"took longer than the deadline of {options.deadline:g} s")
            return body
        body += piece
        if len(body) > options.max_bytes:
            raise FetchError(f"larger than max_bytes ({options.max_bytes})")


def _set_read_timeout(raw: Any, seconds: float) -> None:
    """Shorten the socket's read timeout to ``seconds`` (urllib3 keeps the connection on the response)."""
    connection = getattr(raw, "connection", None) or getattr(raw, "_connection", None)
    sock = getattr(connection, "sock", None)
    if sock is not None:
        sock.settimeout(max(seconds, 0.001))


def existing_image(images: Path, item: int) -> Path | None:
    for candidate in images.glob(f"{item}.*"):
        if candidate.is_file() and not candidate.name.endswith(".tmp") and candidate.stat().st_size > 0:
            return candidate
    return None


def fetch_images(catalogue: str | Path, options: FetchOptions | None = None, progress: bool = True) -> FetchReport:
    """Fetch every missing image of ``catalogue`` (see the module docstring); returns the counts."""
    options = options or FetchOptions()
    check_options(options)
    catalogue = Path(catalogue)
    if not catalogue.is_dir():
        raise DataError(f"{catalogue}: catalogue folder not found; pass the folder mdrchca data amazon wrote")
    items = read_items_for_fetch(catalogue)
    images = catalogue / "images"
    images.mkdir(exist_ok=True)
    report = FetchReport()
    todo: list[tuple[int, str]] = []
    for item, url in zip(items["itemID"].tolist(), items["image_url"].tolist(), strict=True):
        if not url:
            report.missing += 1
        elif existing_image(images, item) is not None:
            report.already_there += 1
        else:
            todo.append((item, url))
    session = _session(options)

    def work(job: tuple[int, str]) -> tuple[int, str | None]:
        item, url = job
        try:
            data, extension = fetch_image(session, url, options)
        except FetchError as exc:
            return item, str(exc)
        write_bytes(images / f"{item}.{extension}", data)
        return item, None

    with (
        ThreadPoolExecutor(max_workers=options.workers) as pool,
        tqdm(total=len(todo), unit="img", desc="images", disable=not progress) as bar,
    ):
        for item, failure in pool.map(work, todo):
            if failure is None:
                report.fetched += 1
            else:
                report.failed += 1
                report.failures[str(item)] = failure
            bar.update(1)
    session.close()
    paths = [existing_image(images, item) for item in items["itemID"].tolist()]
    items["image"] = [str(p.relative_to(catalogue)) if p is not None else "" for p in paths]
    write_text(catalogue / "items.tsv", items.to_csv(sep="\t", index=False))
    write_text(catalogue / REPORT_FILE, json.dumps(report.to_dict(), indent=2) + "\n")
    log.info(
        "images: %d fetched, %d already there, %d failed, %d without a URL (%s)",
        report.fetched,
        report.already_there,
        report.failed,
        report.missing,
        catalogue / REPORT_FILE,
    )
    return report

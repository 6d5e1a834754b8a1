"""Throughput and peak memory of ``mdrchca data amazon`` on a large synthetic reviews file.

Usage: python benchmarks/bench_amazon_converter.py [--gb 5] [--work DIR] [--keep]

Writes a 2014-layout reviews file of about ``--gb`` GB (JSON lines of about 1 KB, review text included, users
and items drawn from Zipf laws so that the 5-core keeps a real share) and a metadata file, then times, each
in its own single-threaded process so that peak resident memory is its own:

- the reference: a bare ``for line in file: json.loads(line)`` pass, the least any JSON converter does;
- the converter (streamed reading, 5-core, ids, split, items.tsv), written into a new catalogue.

Prints lines per second of both, their ratio, and each process's peak RSS against the file size.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REFERENCE = """
import json, sys
n = 0
with open(sys.argv[1], encoding="utf-8") as handle:
    for line in handle:
        json.loads(line)
        n += 1
print(n)
"""

CONVERT = """
import sys
from mdrchca.data.amazon import convert_amazon
report = convert_amazon(sys.argv[1], sys.argv[2], sys.argv[3])
print(report.lines, report.users, report.items, report.interactions)
"""


def write_reviews(path: Path, target_bytes: int, seed: int = 0) -> int:
    rng = np.random.default_rng(seed)
    text = "This is a perfectly ordinary review of a baby product that worked well for us. " * 11
    lines = 0
    written = 0
    n_users, n_items = 2_000_000, 400_000
    with open(path, "w", encoding="utf-8") as handle:
        while written < target_bytes:
            users = rng.zipf(1.3, 100_000) % n_users
            items = rng.zipf(1.2, 100_000) % n_items
            times = rng.integers(1_200_000_000, 1_400_000_000, 100_000)
            chunk = "".join(
                json.dumps(
                    {
                        "reviewerID": f"A{u:013d}",
                        "asin": f"B{i:09d}",
                        "reviewerName": "Someone",
                        "helpful": [0, 0],
                        "reviewText": text,
                        "overall": 5.0,
                        "summary": "Fine",
                        "unixReviewTime": int(t),
                        "reviewTime": "01 1, 2013",
                    }
                )
                + "\n"
                for u, i, t in zip(users, items, times, strict=True)
            )
            handle.write(chunk)
            written += len(chunk)
            lines += 100_000
    return lines


def write_meta(path: Path, n_items: int = 400_000) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for i in range(n_items):
            handle.write(repr({"asin": f"B{i:09d}", "title": f"Thing {i}", "imUrl": f"http://x/{i}.jpg"}) + "\n")


def timed(code: str, *args: str) -> tuple[float, str, float]:
    """Seconds, stdout and peak RSS (GiB) of ``python -c code args`` in its own single-threaded process."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    wrapper = (
        "import resource, runpy, sys\n"
        f"exec(compile({code!r}, 'bench', 'exec'))\n"
        "print('PEAK', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
    )
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", wrapper, *args], env=env, capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - start
    peak_kib = int(next(line.split()[1] for line in done.stderr.splitlines() if line.startswith("PEAK")))
    return seconds, done.stdout.strip(), peak_kib / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb", type=float, default=5.0)
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="Keep the generated files.")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-amazon-"))
    work.mkdir(parents=True, exist_ok=True)
    reviews, meta = work / "reviews_Synthetic_5.json", work / "meta_Synthetic.json"
    t0 = time.perf_counter()
    if not reviews.is_file():
        write_reviews(reviews, int(args.gb * 1e9))
        write_meta(meta)
    size_gb = reviews.stat().st_size / 1e9
    print(f"files: {size_gb:.2f} GB of reviews, written in {time.perf_counter() - t0:.0f} s ({work})")
    ref_seconds, ref_out, ref_peak = timed(REFERENCE, str(reviews))
    lines = int(ref_out)
    out = work / "catalogue"
    shutil.rmtree(out, ignore_errors=True)
    conv_seconds, conv_out, conv_peak = timed(CONVERT, str(reviews), str(meta), str(out))
    print(f"lines: {lines:,}; converter: lines, users, items, interactions = {conv_out}")
    print(
        f"reference json.loads pass: {lines / ref_seconds:,.0f} lines/s, {ref_seconds:.0f} s, peak {ref_peak:.2f} GiB"
    )
    print(f"converter: {lines / conv_seconds:,.0f} lines/s, {conv_seconds:.0f} s, peak {conv_peak:.2f} GiB")
    print(
        f"ratio converter / reference time: {conv_seconds / ref_seconds:.2f}; peak RSS / file size: "
        f"{conv_peak * 2**30 / 1e9 / size_gb:.3f}"
    )
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

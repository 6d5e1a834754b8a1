"""One static HTML page over experiment folders and run folders: tables, figures and provenance.

The page needs no server and no network: each experiment's ``results.md`` (tables, tests, provenance) is
rendered with the ``markdown`` package, its figures are embedded as base64 PNG, and run folders get one
results table with each run's ``run.json`` provenance.

Everything read from a folder is untrusted text (a results file can be edited, a dataset folder's name ends up
in a table): :func:`render_untrusted_markdown` is the one place that turns it into HTML, through the ammonia
sanitiser (``nh3``: no script, no event attribute, no ``javascript:`` link, no frame), and the page forbids
scripts outright with a Content-Security-Policy.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Sequence
from pathlib import Path

import markdown
import nh3

from mdrchca.errors import MdrchcaError
from mdrchca.experiments.report import DEFAULT_COLUMNS, results_table
from mdrchca.io import write_text
from mdrchca.training.run_folder import METRICS_FILE, PROVENANCE_FILE, guard_output

RESULTS_MD = "results.md"

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; color: #222; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.3rem; border-bottom: 1px solid #ddd; padding-bottom: .2rem; }
table { border-collapse: collapse; margin: .6rem 0 1.2rem; font-size: .85rem; }
th, td { border: 1px solid #ccc; padding: .25rem .5rem; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
figure { display: inline-block; margin: .5rem 1rem .5rem 0; } img { max-width: 100%; }
figcaption { font-size: .8rem; color: #555; } code, pre { background: #f6f6f6; font-size: .8rem; }
pre { padding: .5rem; overflow-x: auto; }
"""


def _figure(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    name = html.escape(path.name)
    return f'<figure><img alt="{name}" src="data:image/png;base64,{data}"><figcaption>{name}</figcaption></figure>'


CONTENT_SECURITY_POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
"""No script of any origin, no frame, no request: the page shows only its own text, styles and data images."""

ALLOWED_ATTRIBUTES = {"th": {"align"}, "td": {"align"}, "a": {"href", "title"}, "code": {"class"}}


def render_untrusted_markdown(text: str) -> str:
    """Markdown from a file to HTML that cannot run anything: rendered, then sanitised (ammonia's safe tags;
    links only to http, https and mailto)."""
    html_text = markdown.markdown(text, extensions=["tables"])
    return nh3.clean(html_text, attributes=ALLOWED_ATTRIBUTES, url_schemes={"http", "https", "mailto"})


def _read_results(folder: Path) -> str:
    path = folder / RESULTS_MD
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise MdrchcaError(f"{path}: not UTF-8 text; rewrite it with the command that made it") from None


def _experiment_section(folder: Path) -> str:
    body = render_untrusted_markdown(_read_results(folder))
    body = body.replace("<h1>", "<h2>").replace("</h1>", "</h2>")
    figures = "".join(_figure(p) for p in sorted(folder.glob("*.png")))
    source = f"<p><small>folder: <code>{html.escape(str(folder))}</code></small></p>"
    return f'<section class="experiment">{body}{figures}{source}</section>'


def _runs_section(runs: Sequence[Path]) -> str:
    frame = results_table(list(runs), DEFAULT_COLUMNS, "test", diagnostics=False)
    table = frame.to_html(index=False, float_format=lambda v: f"{v:.4f}", border=0, escape=True)
    provenance = []
    for run in runs:
        path = run / PROVENANCE_FILE
        record = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        shown = {k: record.get(k) for k in ("command", "code", "libraries", "machine", "seeds") if k in record}
        provenance.append(
            f"<details><summary>{html.escape(run.name)}</summary><pre>"
            f"{html.escape(json.dumps(shown, indent=2))}</pre></details>"
        )
    return f'<section class="runs"><h2>Runs</h2>{table}<h3>Provenance</h3>{"".join(provenance)}</section>'


def write_html_report(folders: Sequence[str | Path], out: str | Path, title: str = "mdrchca report") -> Path:
    """Write ``out``: a section per experiment folder (with ``results.md``), one table over run folders (with
    ``metrics.json``). Anything else is refused with one line naming it, and so is an ``out`` inside a run or
    dataset folder."""
    guard_output(out, "the page")
    experiments, runs = [], []
    for item in map(Path, folders):
        if (item / RESULTS_MD).is_file():
            experiments.append(item)
        elif (item / METRICS_FILE).is_file():
            runs.append(item)
        else:
            raise MdrchcaError(
                f"{item}: neither an experiment folder (no {RESULTS_MD}) nor a finished run (no {METRICS_FILE}); "
                "pass folders written by mdrchca compare / sweep / ablate / robustness or mdrchca train"
            )
    sections = [_experiment_section(folder) for folder in experiments]
    if runs:
        sections.append(_runs_section(runs))
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>{''.join(sections)}</body></html>\n"
    )
    out = Path(out)
    write_text(out, page)
    return out

"""The HTML report renders untrusted results files without running anything they carry."""

from __future__ import annotations

import html
from html.parser import HTMLParser
from pathlib import Path

import pytest

from mdrchca.errors import MdrchcaError
from mdrchca.experiments.html import render_untrusted_markdown, write_html_report

HOSTILE = """# Comparison

| dataset | model | R@20 |
|---|---|---|
| <img src=x onerror="window.pwned=1"> | lightgcn | 0.1 |
| <script>window.pwned=2</script> | vbpr | 0.2 |

[a link](javascript:window.pwned=3) and [another](https://example.org/ok)
<iframe src="https://example.org"></iframe>
<svg onload="window.pwned=4"><circle r="3"/></svg>
<a href="data:text/html,<script>window.pwned=5</script>">data</a>
<details open ontoggle="window.pwned=6">x</details>
<style>body { background: url(javascript:window.pwned=7) }</style>
"""


def _hostile_experiment(root: Path) -> Path:
    folder = root / 'exp<img src=y onerror="window.pwned=8">'
    folder.mkdir(parents=True)
    (folder / "results.md").write_text(HOSTILE, encoding="utf-8")
    return folder


def test_untrusted_markdown_keeps_its_tables_and_loses_everything_that_runs() -> None:
    html_text = render_untrusted_markdown(HOSTILE).lower()
    assert "<table>" in html_text and "<td>lightgcn</td>" in html_text
    for needle in ("<script", "onerror", "onload", "ontoggle", "javascript:", "<iframe", "data:text", "<style"):
        assert needle not in html_text, needle
    assert 'href="https://example.org/ok"' in html_text  # an ordinary link stays


class _Elements(HTMLParser):
    """Every element of a page with its attributes, as a browser's parser sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))


def test_the_page_forbids_scripts_and_escapes_folder_names(tmp_path: Path) -> None:
    folder = _hostile_experiment(tmp_path)
    page = write_html_report([folder], tmp_path / "report.html").read_text()
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    parser = _Elements()
    parser.feed(page.split("<body>", 1)[1])  # the head holds the page's own style sheet and nothing else
    tags = {tag for tag, _ in parser.elements}
    assert not tags & {"script", "iframe", "svg", "style", "object", "embed"}, tags
    for tag, attrs in parser.elements:
        assert not [name for name in attrs if name.startswith("on")], (tag, attrs)
        assert not str(attrs.get("href", "")).lower().startswith(("javascript:", "data:")), (tag, attrs)
    assert html.escape(folder.name) in page  # the folder's name is shown as text


def test_a_results_file_that_is_not_utf8_is_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "exp"
    folder.mkdir()
    (folder / "results.md").write_bytes(b"# r\n\xff\xfe\x00bad")
    with pytest.raises(MdrchcaError, match="not UTF-8"):
        write_html_report([folder], tmp_path / "report.html")
    assert not (tmp_path / "report.html").exists()


def test_no_script_runs_when_a_browser_opens_the_hostile_page(tmp_path: Path, headless_browser) -> None:
    page = write_html_report([_hostile_experiment(tmp_path)], tmp_path / "report.html")
    headless_browser.get(page.as_uri())
    assert headless_browser.find_elements("tag name", "table")  # the page rendered
    assert headless_browser.execute_script("return typeof window.pwned") == "undefined"
    assert headless_browser.execute_script("return document.scripts.length") == 0


def test_the_python_writers_refuse_an_output_inside_a_run_folder(tmp_path: Path) -> None:
    """The guard sits in the functions that write, so a Python caller gets it as well as the CLI."""
    from mdrchca.experiments.explain import explain_item
    from mdrchca.training.run_folder import RunFolderError

    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("model: lightgcn\n")
    with pytest.raises(RunFolderError, match="inside the run folder"):
        write_html_report([run], run / "page.html")
    with pytest.raises(RunFolderError, match="inside the run folder"):
        explain_item(None, None, 0, run / "item.png")
    assert sorted(p.name for p in run.iterdir()) == ["config.yaml"]

"""A small catalogue with item-level text and image vectors, for grids that train several models quickly."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(scope="session")
def vector_catalogue(small_catalogue: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small catalogue's interactions with random 8-dimensional text and image vectors per item."""
    folder = tmp_path_factory.mktemp("vectors") / "vectors"
    folder.mkdir()
    source = next(small_catalogue.glob("*.inter"))
    shutil.copy(source, folder / "vectors.inter")
    n_items = 120
    rng = np.random.default_rng(3)
    for name in ("text", "image"):
        np.save(folder / f"{name}_feat.npy", rng.normal(size=(n_items, 8)).astype(np.float32))
    return folder


@pytest.fixture
def headless_browser():
    """Debian's headless Chromium through selenium (skipped where it is missing; .ci/run installs it)."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is missing (pip install selenium)")
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver_path:
        pytest.skip("no headless Chromium (Debian's chromium and chromium-driver packages; .ci/run installs them)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1400,2000",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = webdriver.Chrome(service=webdriver.ChromeService(executable_path=driver_path), options=options)
    try:
        yield browser
    finally:
        browser.quit()

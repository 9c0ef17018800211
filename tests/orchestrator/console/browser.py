"""The console's browser tests' harness: Debian's chromium driven by Playwright for Python, never
a browser of Playwright's own download (`playwright install` is run nowhere).

Without /usr/bin/chromium (or the playwright package) the browser tests skip, naming why; with
GARRISON_REQUIRE_BROWSER=1 (CI sets it in .ci/run, which installs both) they fail instead."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("GARRISON_CHROMIUM", "/usr/bin/chromium"))
ROOT = Path(__file__).parents[3]
SCREENSHOTS = Path(os.environ.get("GARRISON_SCREENSHOTS", ROOT / ".garrison" / "screenshots"))


def require_browser() -> None:
    """Skip (or fail, when CI requires the browser) without chromium and playwright."""
    missing = []
    if not CHROMIUM.is_file():
        missing.append(f"{CHROMIUM} (apt-get install -y chromium)")
    if importlib.util.find_spec("playwright") is None:
        missing.append("the playwright package (pip install -e '.[dev]')")
    if not missing:
        return
    reason = "the console's browser tests need " + " and ".join(missing)
    if os.environ.get("GARRISON_REQUIRE_BROWSER") == "1":
        pytest.fail(f"GARRISON_REQUIRE_BROWSER=1: {reason}", pytrace=False)
    pytest.skip(reason)


def launch_args() -> dict[str, object]:
    # --no-sandbox: CI and the developers' machines run as root, where chromium's sandbox
    # cannot start; the pages are our own console on the loopback.
    return {
        "executable_path": str(CHROMIUM),
        "headless": True,
        "args": ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
    }

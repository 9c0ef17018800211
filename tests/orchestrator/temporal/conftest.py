"""Keep a developer's own `GARRISON_*` variables out of these tests."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in os.environ:
        if name.startswith("GARRISON_"):
            monkeypatch.delenv(name)

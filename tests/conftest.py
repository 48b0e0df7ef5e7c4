"""Shared test set-up: the data mirror, a private cache, and skips when data is unavailable."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"

# Tests read the real datasets from the mirror beside the checkout, as the Makefile does.
if "BERTLAB_DATA" not in os.environ and SHARED_DATA.is_dir():
    os.environ["BERTLAB_DATA"] = str(SHARED_DATA)


@pytest.fixture
def private_cache(tmp_path, monkeypatch):
    """A fresh, empty BERTLAB_CACHE for one test."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("BERTLAB_CACHE", str(cache))
    return cache


@pytest.fixture(scope="session")
def data_mirror() -> Path:
    """The shared data mirror; the tests that read real data need it."""
    mirror = os.environ.get("BERTLAB_DATA")
    if not mirror or not Path(mirror).is_dir():
        pytest.skip("no data mirror: set BERTLAB_DATA (the Makefile points it at ../shared/data)")
    return Path(mirror)

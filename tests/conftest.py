"""Shared fixtures. Tests that need the real model use the bundled all-MiniLM-L6-v2 (no network)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"
SAMPLE = ROOT / "samples" / "ukraine-kyiv-nato.txt"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "stories.duckdb"


@pytest.fixture
def shared_data() -> Path:
    """The labelled sets. Missing data fails the test: a quality check that skips cannot report a failure."""
    if not SHARED_DATA.exists():
        pytest.fail(f"labelled data not found at {SHARED_DATA}: put ../shared beside the repository")
    return SHARED_DATA


def needs_shared_data() -> pytest.MarkDecorator:
    return pytest.mark.usefixtures("shared_data")

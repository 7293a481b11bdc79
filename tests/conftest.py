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


def needs_shared_data() -> pytest.MarkDecorator:
    return pytest.mark.skipif(not SHARED_DATA.exists(), reason="../shared/data is not beside the repository")

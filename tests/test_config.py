import tomllib
from pathlib import Path

import pytest

from pipeline.config import Config, load_config
from pipeline.errors import ConfigError
from tests.conftest import ROOT


def test_default_toml_matches_the_code_defaults() -> None:
    assert load_config(ROOT / "configs" / "default.toml") == Config()
    text = (ROOT / "configs" / "default.toml").read_text()
    for line in text.splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            assert "#" in line, f"setting without a comment: {line}"
    assert tomllib.loads(text)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[cluster]\nmerge_similarity = 2.0\n", "cluster.merge_similarity: 2.0 is out of range"),
        ("[cluster]\nneighbours = 'many'\n", "cluster.neighbours: expected int"),
        ("[clusterr]\n", "unknown setting clusterr"),
        ("[embed]\nbackend = 'gpu'\n", "embed.backend: 'gpu' is not one of"),
        ("[cluster\n", "invalid TOML"),
    ],
)
def test_bad_config_is_a_one_line_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")) as caught:
        load_config(path)
    assert "\n" not in str(caught.value)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.toml")

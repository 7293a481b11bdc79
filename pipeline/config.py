"""The one place where settings and their defaults are defined.

`configs/default.toml` mirrors these dataclasses with a comment per key (a test keeps the two equal).
A user's TOML file overrides any subset; unknown keys, wrong types and out-of-range values are errors.
Settings state intent (a similarity threshold, a time window); stages derive low-level parameters.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

from pipeline.errors import ConfigError


@dataclass(frozen=True)
class FieldMap:
    """Which input field holds each article attribute (JSON Lines, CSV and Parquet)."""

    id: str = "id"
    title: str = "title"
    text: str = "text"
    source: str = "source"
    url: str = "url"
    published_at: str = "published_at"


@dataclass(frozen=True)
class InputConfig:
    format: str = "auto"
    fields: FieldMap = field(default_factory=FieldMap)
    max_field_chars: int = 100_000

    def validate(self) -> None:
        _choice("input.format", self.format, ("auto", *FORMATS))
        _in_range("input.max_field_chars", self.max_field_chars, 100, 10_000_000)


@dataclass(frozen=True)
class NearDuplicateConfig:
    shingle_words: int = 3
    num_perm: int = 128
    threshold: float = 0.5

    def validate(self) -> None:
        _in_range("near_duplicates.shingle_words", self.shingle_words, 1, 10)
        _in_range("near_duplicates.num_perm", self.num_perm, 16, 1024)
        _in_range("near_duplicates.threshold", self.threshold, 0.05, 1.0)


@dataclass(frozen=True)
class EmbedConfig:
    model: str = ""
    backend: str = "onnx"
    batch_size: int = 64
    max_chars: int = 2000
    cache: bool = True

    def validate(self) -> None:
        _choice("embed.backend", self.backend, ("torch", "onnx", "onnx-int8"))
        _in_range("embed.batch_size", self.batch_size, 1, 4096)
        _in_range("embed.max_chars", self.max_chars, 50, 100_000)
        if self.model and not Path(self.model).is_dir():
            raise ConfigError(f"embed.model: {self.model!r} is not a local model directory")


@dataclass(frozen=True)
class ClusterConfig:
    neighbours: int = 30
    shared_neighbours: int = 10
    exact_neighbours_up_to: int = 10000
    lexical_weight: float = 0.67
    full_text_words: int = 100
    time_scale_hours: float = 48.0
    min_cluster_size: int = 2
    min_samples: int = 1
    attach_similarity: float = 0.2
    merge_similarity: float = 0.33
    merge_cohesion: float = 0.74
    merge_step_minutes: float = 30.0

    def validate(self) -> None:
        _in_range("cluster.neighbours", self.neighbours, 2, 500)
        _in_range("cluster.shared_neighbours", self.shared_neighbours, 1, self.neighbours)
        _in_range("cluster.exact_neighbours_up_to", self.exact_neighbours_up_to, 0, 10_000_000)
        _in_range("cluster.lexical_weight", self.lexical_weight, 0.0, 1.0)
        _in_range("cluster.full_text_words", self.full_text_words, 1, 100_000)
        _in_range("cluster.time_scale_hours", self.time_scale_hours, 0.0, 1e6)
        _in_range("cluster.min_cluster_size", self.min_cluster_size, 2, 1000)
        _in_range("cluster.min_samples", self.min_samples, 1, 1000)
        _in_range("cluster.attach_similarity", self.attach_similarity, 0.0, 2.0)
        _in_range("cluster.merge_similarity", self.merge_similarity, 0.0, 1.0)
        _in_range("cluster.merge_cohesion", self.merge_cohesion, 0.0, 2.0)
        _in_range("cluster.merge_step_minutes", self.merge_step_minutes, 0.0, 1e6)


@dataclass(frozen=True)
class StoriesConfig:
    window_hours: float = 168.0

    def validate(self) -> None:
        _in_range("stories.window_hours", self.window_hours, 0.0, 1e6)


@dataclass(frozen=True)
class StoreConfig:
    db: str = "data/storyclust.duckdb"
    lock_wait_seconds: float = 30.0

    def validate(self) -> None:
        if not self.db:
            raise ConfigError("store.db: must name a file")
        _in_range("store.lock_wait_seconds", self.lock_wait_seconds, 0.0, 3600.0)


@dataclass(frozen=True)
class RunConfig:
    max_items: int = 20000

    def validate(self) -> None:
        _in_range("run.max_items", self.max_items, 1, 100_000_000)


ENGINES = ("local", "ray")


@dataclass(frozen=True)
class EngineConfig:
    name: str = "local"
    ray_address: str = ""
    partition_items: int = 20000
    embed_workers: int = 0
    embed_gpus: float = 0.0

    def validate(self) -> None:
        _choice("engine.name", self.name, ENGINES)
        _in_range("engine.partition_items", self.partition_items, 1, 100_000_000)
        _in_range("engine.embed_workers", self.embed_workers, 0, 100_000)
        _in_range("engine.embed_gpus", self.embed_gpus, 0.0, 64.0)


@dataclass(frozen=True)
class Config:
    run: RunConfig = field(default_factory=RunConfig)
    input: InputConfig = field(default_factory=InputConfig)
    near_duplicates: NearDuplicateConfig = field(default_factory=NearDuplicateConfig)
    embed: EmbedConfig = field(default_factory=EmbedConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    stories: StoriesConfig = field(default_factory=StoriesConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)

    def validate(self) -> Config:
        for section in dataclasses.fields(self):
            getattr(self, section.name).validate()
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def with_engine(self, name: str | None = None, ray_address: str | None = None) -> Config:
        """This config with the engine (and Ray address) of the command line, where given."""
        engine = self.engine
        if name is not None:
            engine = dataclasses.replace(engine, name=name)
        if ray_address is not None:
            engine = dataclasses.replace(engine, name="ray", ray_address=ray_address)
        return dataclasses.replace(self, engine=engine).validate()


FORMATS = ("jsonl", "csv", "parquet", "rss", "digest")


def load_config(path: str | Path | None = None) -> Config:
    """Defaults, overridden by the TOML file at `path` when given."""
    if path is None:
        return Config().validate()
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as problem:
        raise ConfigError(f"cannot read config {path}: {problem}") from None
    except tomllib.TOMLDecodeError as problem:
        raise ConfigError(f"{path}: invalid TOML: {problem}") from None
    return _build(Config, data, "").validate()


def _build(cls: type, data: Any, prefix: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: expected a table")
    hints = get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"unknown setting {prefix}{unknown[0]} (known: {', '.join(sorted(known))})")
    values: dict[str, Any] = {}
    for name, value in data.items():
        kind = hints[name]
        key = f"{prefix}{name}"
        if dataclasses.is_dataclass(kind):
            values[name] = _build(kind, value, f"{key}.")
        elif kind is float and isinstance(value, int | float) and not isinstance(value, bool):
            values[name] = float(value)
        elif kind in (int, str, bool) and type(value) is kind:
            values[name] = value
        else:
            raise ConfigError(f"{key}: expected {kind.__name__}, got {type(value).__name__} {value!r}")
    return cls(**values)


def _in_range(key: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise ConfigError(f"{key}: {value} is out of range [{low}, {high}]")


def _choice(key: str, value: str, options: tuple[str, ...]) -> None:
    if value not in options:
        raise ConfigError(f"{key}: {value!r} is not one of {', '.join(options)}")

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
from typing import Any, ClassVar, get_type_hints

from pipeline.errors import ConfigError


@dataclass(frozen=True)
class FieldMap:
    """Which input field holds each article attribute (JSON, CSV and Parquet).

    A name is a key, or a path into nested values: `source.name`, `authors.0.name` (a list by index);
    `description+content` joins the values of two paths with a blank line. A key spelled exactly so wins.
    """

    id: str = "id"
    title: str = "title"
    text: str = "text"
    source: str = "source"
    url: str = "url"
    published_at: str = "published_at"


FORMATS = ("jsonl", "json", "csv", "parquet", "rss", "digest", "html", "warc")
# Field maps for common shapes of news records: `input.preset`, or found by `auto` (see pipeline.ingest.fields).
PRESETS = ("auto", "none", "newsapi")
ENGINES = ("local", "ray")


def _ranged(default: float, low: float, high: float | str) -> Any:
    """A setting whose valid range stands beside its default; `high` may name an earlier setting."""
    return field(default=default, metadata={"range": (low, high)})


def _one_of(default: str, options: tuple[str, ...]) -> Any:
    """A setting that must be one of `options`."""
    return field(default=default, metadata={"options": options})


class _Section:
    """A config section: one loop checks every range and choice its fields declare, in field order."""

    section: ClassVar[str]

    def __init_subclass__(cls, section: str = "", **kwargs: Any) -> None:
        """Each section names its TOML table, the prefix of its keys in error messages."""
        super().__init_subclass__(**kwargs)
        cls.section = section

    def validate(self) -> None:
        for setting in dataclasses.fields(self):  # type: ignore[arg-type]
            key = f"{self.section}.{setting.name}"
            value = getattr(self, setting.name)
            if "options" in setting.metadata:
                _choice(key, value, setting.metadata["options"])
            if "range" in setting.metadata:
                low, high = setting.metadata["range"]
                _in_range(key, value, low, getattr(self, high) if isinstance(high, str) else high)


@dataclass(frozen=True)
class InputConfig(_Section, section="input"):
    format: str = _one_of("auto", ("auto", *FORMATS))
    fields: FieldMap = field(default_factory=FieldMap)
    preset: str = _one_of("auto", PRESETS)
    records_path: str = ""
    max_field_chars: int = _ranged(100_000, 100, 10_000_000)

    def validate(self) -> None:
        super().validate()
        if self.records_path and not all(self.records_path.split(".")):
            raise ConfigError(
                f"input.records_path: {self.records_path!r} is not a path of keys such as articles or data.items"
            )


@dataclass(frozen=True)
class NearDuplicateConfig(_Section, section="near_duplicates"):
    shingle_words: int = _ranged(3, 1, 10)
    num_perm: int = _ranged(128, 16, 1024)
    threshold: float = _ranged(0.5, 0.05, 1.0)


@dataclass(frozen=True)
class EmbedConfig(_Section, section="embed"):
    model: str = ""
    backend: str = _one_of("auto", ("auto", "torch", "torch-bf16", "onnx", "onnx-int8"))
    batch_size: int = _ranged(64, 1, 4096)
    max_chars: int = _ranged(2000, 50, 100_000)
    cache: bool = True

    def validate(self) -> None:
        super().validate()
        if self.model and not Path(self.model).is_dir():
            raise ConfigError(f"embed.model: {self.model!r} is not a local model directory")


@dataclass(frozen=True)
class ClusterConfig(_Section, section="cluster"):
    neighbours: int = _ranged(30, 2, 500)
    shared_neighbours: int = _ranged(10, 1, "neighbours")
    exact_neighbours_up_to: int = _ranged(10000, 0, 10_000_000)
    lexical_weight: float = _ranged(0.67, 0.0, 1.0)
    full_text_words: int = _ranged(100, 1, 100_000)
    time_scale_hours: float = _ranged(48.0, 0.0, 1e6)
    min_cluster_size: int = _ranged(2, 2, 1000)
    min_samples: int = _ranged(1, 1, 1000)
    attach_similarity: float = _ranged(0.2, 0.0, 2.0)
    merge_similarity: float = _ranged(0.33, 0.0, 1.0)
    merge_cohesion: float = _ranged(0.74, 0.0, 2.0)
    merge_step_minutes: float = _ranged(30.0, 0.0, 1e6)


@dataclass(frozen=True)
class StoriesConfig(_Section, section="stories"):
    window_hours: float = _ranged(168.0, 0.0, 1e6)
    reopen: bool = True


@dataclass(frozen=True)
class StoreConfig(_Section, section="store"):
    db: str = "data/storyclust.duckdb"
    lock_wait_seconds: float = _ranged(30.0, 0.0, 3600.0)
    # Recent rows of articles, caches and rejects stay in the database file (copied by every run) until one
    # table holds this many; then they are sealed into Parquet segments beside it (`pipeline.store.segments`).
    segment_rows: int = _ranged(5000, 1, 10_000_000)
    # A segment replaced by `prune` stays on disk this long for readers holding an older snapshot.
    keep_replaced_hours: float = _ranged(24.0, 0.0, 87600.0)

    def validate(self) -> None:
        if not self.db:
            raise ConfigError("store.db: must name a file")
        super().validate()


@dataclass(frozen=True)
class RunConfig(_Section, section="run"):
    max_items: int = _ranged(20000, 1, 100_000_000)


@dataclass(frozen=True)
class EngineConfig(_Section, section="engine"):
    name: str = _one_of("local", ENGINES)
    ray_address: str = ""
    partition_items: int = _ranged(20000, 1, 100_000_000)
    embed_workers: int = _ranged(0, 0, 100_000)
    embed_gpus: float = _ranged(0.0, 0.0, 64.0)


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

    def with_input(self, records_path: str | None = None) -> Config:
        """This config with the input settings of the command line, where given."""
        if records_path is None:
            return self
        return dataclasses.replace(self, input=dataclasses.replace(self.input, records_path=records_path)).validate()

    def with_engine(self, name: str | None = None, ray_address: str | None = None) -> Config:
        """This config with the engine (and Ray address) of the command line, where given."""
        engine = self.engine
        if name is not None:
            engine = dataclasses.replace(engine, name=name)
        if ray_address is not None:
            engine = dataclasses.replace(engine, name="ray", ray_address=ray_address)
        return dataclasses.replace(self, engine=engine).validate()


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

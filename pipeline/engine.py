"""Engines: where the stages run. The runner asks an engine to map an item stage over a table and to
cluster a partition; the local engine does both in this process, the Ray engine (`pipeline.ray_engine`)
on a Ray cluster. The stages and the wiring are the same for both."""

from __future__ import annotations

from typing import Protocol

import pyarrow as pa

from pipeline.config import Config
from pipeline.normalize import normalize_records
from pipeline.partition import PartitionInput, PartitionResult, cluster_partition
from pipeline.records import Article, RawRecord
from pipeline.stage import ItemStage


class Engine(Protocol):
    name: str

    def map(self, stage: ItemStage, table: pa.Table, *, model: bool = False) -> pa.Table:
        """`stage` over every row of `table`, rows in order; `model`: the stage loads a model once per worker."""
        ...

    def normalize(self, records: list[RawRecord]) -> list[Article]:
        """The records cleaned into articles (`pipeline.normalize`), in order."""
        ...

    def cluster(self, part: PartitionInput, config: Config) -> PartitionResult: ...

    def close(self) -> None: ...


class LocalEngine:
    """This process, one batch at a time."""

    name = "local"

    def map(self, stage: ItemStage, table: pa.Table, *, model: bool = False) -> pa.Table:
        return stage(table).table

    def normalize(self, records: list[RawRecord]) -> list[Article]:
        """In this process, the records as they are: through Arrow tables and back cost 3 s at 200k items."""
        return normalize_records(records)

    def cluster(self, part: PartitionInput, config: Config) -> PartitionResult:
        return cluster_partition(part, config)

    def close(self) -> None:
        pass


def open_engine(config: Config) -> Engine:
    """The engine `config.engine.name` names (the Ray one joins or starts its cluster now)."""
    if config.engine.name == "ray":
        from pipeline.ray_engine import RayEngine

        return RayEngine(config)
    return LocalEngine()

"""The Ray engine: the same stages on a Ray cluster (`engine.name = "ray"`, `pip install '.[ray]'`).

Item stages run as Ray Data `map_batches` over the rows: normalize and MinHash signatures as tasks, the
embedding as a pool of actors that each load the model once (on a GPU when `engine.embed_gpus` asks for
one). Clustering runs per time partition (`pipeline.partition`) as a Ray task; the driver writes each
partition's stories into the run's working copy before the next partition reads the stories still open,
so only the open stories cross partitions. See docs/ray.md.
"""

from __future__ import annotations

import logging
import socket
import warnings
from typing import Any

import pyarrow as pa

from pipeline.config import Config
from pipeline.errors import ConfigError, EngineError, StoryclustError
from pipeline.normalize import NormalizeStage
from pipeline.partition import PartitionInput, PartitionResult, cluster_partition
from pipeline.records import RAW_RECORD_SCHEMA, Article, RawRecord, records_table, table_records
from pipeline.stage import ItemStage

ROWS_PER_BLOCK = 512  # rows per Ray Data block: small enough to spread one partition over every worker


class _StageActor:
    """Holds one item stage in a Ray actor, so its model loads once per worker, not per batch."""

    def __init__(self, stage: ItemStage) -> None:
        self.stage = stage

    def __call__(self, table: pa.Table) -> pa.Table:
        return _apply(table, self.stage)


def _apply(table: pa.Table, stage: ItemStage) -> pa.Table:
    """The stage on a block, keeping each row's position (`_row`) so the driver restores the order."""
    rows = table.column("_row")
    return stage(table.drop_columns(["_row"])).table.append_column("_row", rows)


class RayEngine:
    """Joins the cluster at `engine.ray_address` (empty: starts Ray on this machine) for the run."""

    name = "ray"

    def __init__(self, config: Config) -> None:
        try:
            import ray
        except ImportError as missing:
            raise EngineError("engine ray needs Ray: pip install 'storyclust[ray]'") from missing
        self.ray, self.config = ray, config.engine
        if config.engine.embed_gpus and config.embed.backend not in ("torch", "torch-bf16"):
            raise ConfigError(
                'engine.embed_gpus: needs embed.backend = "torch" or "torch-bf16" (the ONNX backends run on the CPU)'
            )
        address = config.engine.ray_address or None
        for name in ("ray", "ray.data"):  # the run log is storyclust's; Ray's own goes to its session files
            logging.getLogger(name).setLevel(logging.ERROR)
        if address:
            _reachable(address)
        self.owned = not ray.is_initialized()  # joined by this engine: left by it at close
        try:
            ray.init(
                ignore_reinit_error=True,
                address=address,
                include_dashboard=False,
                logging_level=logging.ERROR,
                log_to_driver=False,
                configure_logging=False,
                runtime_env={"env_vars": {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}},
            )
        except (ConnectionError, RuntimeError, ValueError) as problem:
            raise EngineError(f"cannot join the Ray cluster at {address or 'this machine'}: {problem}") from problem
        import ray.data  # configures its logger on import: quietened after

        logging.getLogger("ray.data").setLevel(logging.ERROR)
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # storyclust logs each stage; Ray's would interleave with it
        context.print_on_execution_start = False
        self.cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        self.gpus = int(ray.cluster_resources().get("GPU", 0))

    def embed_workers(self) -> int:
        """Model actors: as configured, else one per GPU share (with `embed_gpus`) or one per CPU."""
        if self.config.embed_workers:
            return self.config.embed_workers
        if self.config.embed_gpus:
            return max(1, int(self.gpus / self.config.embed_gpus))
        return self.cpus

    def normalize(self, records: list[RawRecord]) -> list[Article]:
        """The normalize stage mapped over the records as an Arrow table, on the cluster."""
        return table_records(self.map(NormalizeStage(), records_table(records, RAW_RECORD_SCHEMA)), Article)

    def map(self, stage: ItemStage, table: pa.Table, *, model: bool = False) -> pa.Table:
        if not table.num_rows:
            return stage(table).table
        rows = table.append_column("_row", pa.array(range(table.num_rows), pa.int64()))
        count = max(1, min(-(-table.num_rows // ROWS_PER_BLOCK), 4 * self.cpus))
        batch = -(-table.num_rows // count)
        # Blocks cut here, not by Ray's repartition: an all-to-all step would wait for CPUs the actors hold.
        blocks = [rows.slice(start, batch) for start in range(0, rows.num_rows, batch)]
        dataset = self.ray.data.from_arrow(blocks)
        if model:
            with warnings.catch_warnings():  # Ray 2.60 has no named parameter for max_restarts yet
                warnings.filterwarnings("ignore", message=".*ray_remote_args.*")
                dataset = dataset.map_batches(
                    _StageActor,
                    fn_constructor_args=(stage,),
                    compute=self.ray.data.ActorPoolStrategy(size=min(self.embed_workers(), len(blocks))),
                    batch_format="pyarrow",
                    batch_size=batch,
                    num_cpus=0 if self.config.embed_gpus else 1,
                    num_gpus=self.config.embed_gpus or None,
                    max_restarts=0,  # a lost worker fails the run (nothing is published), as a local run would
                )
        else:
            dataset = dataset.map_batches(_apply, fn_args=(stage,), batch_format="pyarrow", batch_size=batch)
        try:
            parts = self.ray.get(dataset.to_arrow_refs())
        except self.ray.exceptions.RayError as problem:
            raise _domain_error(problem, stage.name) from problem
        done = pa.concat_tables([part for part in parts if part.num_rows]).sort_by("_row")
        return done.drop_columns(["_row"])

    def cluster(self, part: PartitionInput, config: Config) -> PartitionResult:
        task = self.ray.remote(num_cpus=1)(cluster_partition)
        try:
            return self.ray.get(task.remote(part, config))
        except self.ray.exceptions.RayError as problem:
            raise _domain_error(problem, "cluster") from problem

    def close(self) -> None:
        if self.owned:
            self.ray.shutdown()


def _reachable(address: str, seconds: float = 10.0) -> None:
    """A "host:port" address must answer within `seconds`: Ray itself would retry for minutes."""
    host, _, port = address.rpartition(":")
    if "://" in address or not host or not port.isdigit():
        return  # "auto", or a ray:// client address: Ray's own checks
    try:
        socket.create_connection((host, int(port)), timeout=seconds).close()
    except OSError as problem:
        raise EngineError(f"cannot join the Ray cluster at {address}: {problem.strerror or problem}") from problem


def _domain_error(problem: Any, stage: str) -> Exception:
    """A storyclust error raised on a worker as itself (the CLI prints it as usual), anything else as an
    `EngineError` naming the stage and the worker's last line."""
    cause = getattr(problem, "cause", None)
    if isinstance(cause, StoryclustError):
        return cause
    lines = [line for line in str(problem).splitlines() if line.strip()]
    return EngineError(f"{stage} failed on the Ray cluster: {lines[-1] if lines else type(problem).__name__}")

"""The Ray engine on a local Ray cluster: a head and a worker node started here, one CPU each.

The same CLI runs with `--engine ray --ray-address` against the cluster and with the local engine; on the
three labelled sets the Ray engine must score within 0.005 BCubed F1 of the local one and give the same
canonical headline to every story both engines form. The real model, real DuckDB files.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from pipeline.config import Config, load_config
from pipeline.dedup import SignatureStage
from pipeline.engine import LocalEngine
from pipeline.errors import ConfigError, EngineError
from pipeline.evaluate import read_gold, score
from pipeline.store import Store
from tests.conftest import SHARED_DATA, needs_shared_data

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def cluster() -> str:
    """A two-node Ray cluster on this machine (head + worker, one CPU each), torn down after the module."""
    from ray.cluster_utils import Cluster

    nodes = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "object_store_memory": 300_000_000, "include_dashboard": False},
    )
    nodes.add_node(num_cpus=1, object_store_memory=300_000_000)
    nodes.wait_for_nodes()
    yield nodes.address
    nodes.shutdown()


def storyclust(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "pipeline.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})


def stories(db: Path) -> tuple[dict[str, str], dict[frozenset[str], str]]:
    """Each article's story, and each story's member set with its headline."""
    with Store(db, read_only=True) as store:
        members = store.memberships()
        rows = store.db.execute("SELECT story_id, headline FROM stories WHERE status = 'open'").fetchall()
    by_story: dict[str, set[str]] = {}
    for article, story in members.items():
        by_story.setdefault(story, set()).add(article)
    return members, {frozenset(by_story[story]): headline for story, headline in rows if story in by_story}


@needs_shared_data()
@pytest.mark.slow
@pytest.mark.parametrize("name", ["gvc-val", "ecbplus", "uci-news-head"])
def test_ray_engine_scores_as_the_local_engine(cluster: str, name: str, tmp_path: Path) -> None:
    docs, gold = SHARED_DATA / name / "docs.jsonl", read_gold(SHARED_DATA / name / "gold.jsonl")
    local_db, ray_db = tmp_path / "local.duckdb", tmp_path / "ray.duckdb"
    # fp32 vectors: the engines batch the texts differently, and bf16 products (`auto` on a CPU with AMX) round
    # a text's vector by its batch's shape (cosine 0.9999), enough to turn a tie between two titles.
    config = tmp_path / "fp32.toml"
    config.write_text('[embed]\nbackend = "onnx"\n', encoding="utf-8")
    assert storyclust("run", str(docs), "--db", str(local_db), "-q", "--config", str(config)).returncode == 0
    done = storyclust(
        "run", str(docs), "--db", str(ray_db), "-q", "--config", str(config), "--ray-address", cluster,
        "--log-format", "json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    log = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    assert next(row for row in log if row["stage"] == "embed")["embedded"] > 0
    local_members, local_headlines = stories(local_db)
    ray_members, ray_headlines = stories(ray_db)
    local_f1, ray_f1 = score(local_members, gold).bcubed_f1, score(ray_members, gold).bcubed_f1
    assert abs(ray_f1 - local_f1) <= 0.005, (ray_f1, local_f1)
    same = local_headlines.keys() & ray_headlines.keys()
    assert len(same) >= 0.9 * len(local_headlines)
    assert {m: ray_headlines[m] for m in same} == {m: local_headlines[m] for m in same}


@needs_shared_data()
@pytest.mark.slow
def test_time_partitions_on_ray_give_the_local_engines_stories(cluster: str, tmp_path: Path) -> None:
    """gvc-val (two years of dated shootings) in partitions of 20 items: four Ray tasks, each seeing only the
    stories still open before it, and the local engine with the same partitions forms the same stories."""
    config = tmp_path / "partitions.toml"
    config.write_text("[engine]\npartition_items = 20\n", encoding="utf-8")
    docs = SHARED_DATA / "gvc-val" / "docs.jsonl"
    results = {}
    for engine in ("local", "ray"):
        db = tmp_path / f"{engine}.duckdb"
        extra = ["--ray-address", cluster] if engine == "ray" else []
        done = storyclust(
            "run", str(docs), "--db", str(db), "-q", "--config", str(config), "--log-format", "json", *extra
        )
        assert done.returncode == 0, done.stderr[-2000:]
        log = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
        assert [row["partitions"] for row in log if "partitions" in row] == [4]
        results[engine] = stories(db)[1]
    assert results["ray"] == results["local"]
    gold = read_gold(SHARED_DATA / "gvc-val" / "gold.jsonl")
    partitioned = {article: str(n) for n, members in enumerate(results["ray"]) for article in members}
    assert score(partitioned, gold).bcubed_precision >= 0.93  # no story joins two shootings across partitions


def test_an_item_stage_gives_the_same_table_on_ray_as_here(cluster: str) -> None:
    from pipeline.ray_engine import RayEngine

    texts = [f"Storm {i} hits the coast of town number {i % 7} on Monday" for i in range(1500)]
    table = pa.table({"text": texts})
    stage = SignatureStage(Config().near_duplicates)
    engine = RayEngine(load_config().with_engine("ray", cluster))
    try:
        assert engine.map(stage, table).equals(LocalEngine().map(stage, table))
    finally:
        engine.close()


def test_an_unreachable_cluster_is_one_line_and_exit_1(tmp_path: Path) -> None:
    docs = tmp_path / "one.jsonl"
    docs.write_text('{"id": "a", "title": "Storm hits the coast", "text": "A storm hit the coast."}\n')
    done = storyclust("run", str(docs), "--db", str(tmp_path / "x.duckdb"), "--ray-address", "127.0.0.1:9")
    assert done.returncode == 1
    assert done.stderr.startswith("storyclust: error: cannot join the Ray cluster at 127.0.0.1:9")
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x.duckdb").exists()  # the engine is joined before the database is touched


def test_without_ray_installed_the_engine_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.ray_engine import RayEngine

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(EngineError, match=r"pip install 'storyclust\[ray\]'"):
        RayEngine(load_config().with_engine("ray"))


def test_gpu_embedding_asks_for_the_torch_backend() -> None:
    from pipeline.ray_engine import RayEngine

    config = load_config().with_engine("ray")
    config = dataclasses.replace(config, engine=dataclasses.replace(config.engine, embed_gpus=1.0))
    with pytest.raises(ConfigError, match='embed.backend = "torch"'):
        RayEngine(config)

"""`make bench`, part 3: seconds and peak memory per stage on synthetic streams of N items.

The streams come from `bench.stream` (real headlines, perturbed; the N-item stream is the first N items
of the largest one). Embedding is the one stage this benchmark does not measure: every item's vector is
computed once with storyclust's own embedder and kept in `bench/cache/`, and each run starts from a fresh
database whose embedding cache holds them (labelled "cached" in the tables). Every other stage runs as
in production: `storyclust run` as a whole process on the stream file.

    python -m bench.scale 20000 50000 200000
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import (
    copy_store,
    machine,
    markdown_table,
    measured_run,
    stage_totals,
    store_bytes,
    uncapped_config,
    write_results,
)
from bench.stream import generate, templates_from, write_jsonl
from pipeline.config import Config, load_config
from pipeline.embed import Embedder, model_id
from pipeline.ingest import ingest
from pipeline.normalize import normalize_record
from pipeline.stage import text_hash
from pipeline.store.segments import segment_folder

CACHE = Path("bench/cache")


def embedded_contents(path: Path, config: Config) -> list[str]:
    """What the pipeline embeds for each record of a stream file (read and normalized as a run would)."""
    batch = ingest([str(path)], config.input, None)
    return [normalize_record(record).content[: config.embed.max_chars] for record in batch.records]


def vector_cache(stream: Path, config: Config) -> tuple[dict[str, int], np.ndarray, float]:
    """Vectors of every distinct text of the stream, computed once by storyclust's embedder and kept."""
    CACHE.mkdir(parents=True, exist_ok=True)
    name, backend, weights = model_id(config.embed).split(":")
    target = CACHE / f"{stream.stem}.{name}-{backend}.npz"  # the vectors keep their weights' hash inside
    if target.exists() and str(np.load(target).get("weights", weights)) != weights:
        target.unlink()  # vectors of other weights
    if target.exists():
        saved = np.load(target)
        keys = [str(k) for k in saved["keys"]]
        return {k: i for i, k in enumerate(keys)}, saved["vectors"], float(saved["seconds"])
    texts = sorted(set(embedded_contents(stream, config)))
    print(f"embedding {len(texts)} distinct texts once (kept in {target})", file=sys.stderr)
    start = time.perf_counter()
    vectors = Embedder(config.embed).encode(texts, progress=True)
    seconds = time.perf_counter() - start
    keys = [text_hash(t) for t in texts]
    np.savez(target, keys=np.array(keys), vectors=vectors, seconds=seconds, weights=weights)
    return {k: i for i, k in enumerate(keys)}, vectors, seconds


def seed_database(
    db: Path, docs: Path, config: Config, index: dict[str, int], vectors: np.ndarray, every: bool = False
) -> int:
    """A fresh database whose embedding cache already holds the vectors of `docs` (`every`: all of `index`,
    without reading `docs` again)."""
    import pyarrow as pa

    from pipeline.store import Store
    from pipeline.store.writes import list_array

    keys = sorted(index if every else {text_hash(t) for t in embedded_contents(docs, config)})
    rows = np.array([index[k] for k in keys])
    with Store(db) as store:
        store.db.register("seed", pa.table({"text_hash": keys, "vector": list_array(vectors[rows])}))
        store.db.execute(
            "INSERT INTO hot_embedding_cache SELECT ?, text_hash, vector FROM seed", [model_id(config.embed)]
        )
        store.db.unregister("seed")
        store.seal("seed")  # sealed now, as a long-running store would hold them, not by the measured run
    return len(keys)


def bench_point(
    n: int, records: list[dict], work: Path, config: Config, cache: tuple, keep: bool = False
) -> dict[str, Any]:
    docs = work / f"stream-{n}.jsonl"
    write_jsonl(records[:n], docs)
    db = work / f"stream-{n}.duckdb"
    seeded = seed_database(db, docs, config, cache[0], cache[1])
    result = measured_run([docs], db, uncapped_config(work), f" on {n} items")
    stages = stage_totals(result.stderr)
    other = {k: v for k, v in stages.items() if k != "embed"}
    size_mb = store_bytes(db) / 2**20  # the file and its sealed segments
    if not keep:
        db.unlink()
        shutil.rmtree(segment_folder(db), ignore_errors=True)
    return {
        "items": n,
        "cached_vectors": seeded,
        "stages": stages,
        "seconds_without_embedding": round(sum(v["seconds"] for v in other.values()), 2),
        "cpu_seconds_without_embedding": round(sum(v["cpu_seconds"] for v in other.values()), 2),
        "peak_mb_without_embedding": max(v["peak_mb"] for v in other.values()),
        "process_seconds": result.seconds,
        "process_peak_mb": result.peak_mb,
        "database_mb": round(size_mb, 1),
        "database_mb_per_100k_articles": round(size_mb * 100_000 / n, 1),
    }


ARCHIVE_STORIES = 200_000  # stored stories for the closed-story search


def _archive_of(store: Any, stories: int) -> None:
    """Grow the store's story tables to `stories` with copies of its stories a year, two years, ... earlier:
    an archive whose old stories name what today's do (the same templates), for the search to look through.
    Only the tables the search reads (stories, their names and members' dates); the copies have no articles."""
    have = store.db.execute("SELECT count(*) FROM stories").fetchall()[0][0]
    for k in range(1, -(-stories // max(have, 1))):
        suffix, days = f"-y{k}", 365 * k
        store.db.execute(
            f"""INSERT INTO stories (story_id, headline, size, sources, first_seen, last_seen, status, created_run_id,
                    updated_run_id, updated_at, event_first, event_last)
                SELECT story_id || '{suffix}', headline, size, sources, first_seen - INTERVAL {days} DAY,
                    last_seen - INTERVAL {days} DAY, status, created_run_id, updated_run_id,
                    updated_at - INTERVAL {days} DAY, (event_first - INTERVAL {days} DAY)::DATE,
                    (event_last - INTERVAL {days} DAY)::DATE
                FROM stories WHERE story_id NOT LIKE '%-y%'"""
        )
        store.db.execute(
            f"INSERT INTO story_names SELECT story_id || '{suffix}', name FROM story_names WHERE story_id NOT LIKE '%-y%'"
        )
        store.db.execute(
            f"""INSERT INTO story_members (story_id, article_id, event_dates, joined_run_id)
                SELECT story_id || '{suffix}', article_id || '{suffix}',
                    list_transform(event_dates, lambda d: d - INTERVAL {days} DAY)::DATE[], joined_run_id
                FROM story_members WHERE story_id NOT LIKE '%-y%'"""
        )
    store.db.execute("CHECKPOINT")


def closed_story_search(stored: Path, later: list[dict], work: Path) -> dict[str, Any]:
    """A cron-sized run of `later` items on the store of the largest point grown to an archive of
    `ARCHIVE_STORIES` stories, with and without the closed-story search (`stories.reopen`), each on its own
    copy of the store: what the search adds to the run."""
    from pipeline.store import Store

    docs = work / "later.jsonl"
    write_jsonl(later, docs)
    with Store(stored) as store:
        _archive_of(store, ARCHIVE_STORIES)
        stories = store.db.execute("SELECT count(*) FROM stories WHERE status = 'open'").fetchall()[0][0]
    runs = {}
    for reopen in (True, False):
        db = work / f"later-{reopen}.duckdb"
        copy_store(stored, db)
        config = work / f"reopen-{reopen}.toml"
        config.write_text(f"[stories]\nreopen = {'true' if reopen else 'false'}\n", encoding="utf-8")
        result = measured_run([docs], db, config, " on the later batch")
        stages = stage_totals(result.stderr)
        runs["with_search" if reopen else "without_search"] = {
            "stages": stages,
            "seconds_without_embedding": round(sum(v["seconds"] for k, v in stages.items() if k != "embed"), 2),
        }
        db.unlink()
        shutil.rmtree(segment_folder(db), ignore_errors=True)
    with_search, without = runs["with_search"], runs["without_search"]
    return {
        "stored_stories": stories,
        "items": len(later),
        **runs,
        "search_seconds": with_search["stages"].get("closed_stories", {}).get("seconds", 0.0),
        "added_share": round(with_search["seconds_without_embedding"] / without["seconds_without_embedding"] - 1, 3),
    }


def render(result: dict[str, Any]) -> str:
    points = result["points"]
    names = list(points[0]["stages"])
    header = [
        "items",
        *[f"{s} s" for s in names],
        "all but embed s",
        "all but embed CPU s",
        "peak MB (process)",
        "db MB",
    ]
    rows = [
        [
            p["items"],
            *[p["stages"].get(s, {}).get("seconds") for s in names],
            p["seconds_without_embedding"],
            p["cpu_seconds_without_embedding"],
            p["process_peak_mb"],
            p["database_mb"],
        ]
        for p in points
    ]
    first, last = points[0], points[-1]
    growth = last["seconds_without_embedding"] / max(first["seconds_without_embedding"], 1e-9)
    info = result["machine"]
    return "\n".join(
        [
            f"# Scale curve, {info['date']}",
            "",
            f"Machine: {info['cpu']}, {info['cpus']} CPUs, {info['memory_gb']} GB. Streams from `bench.stream` "
            f"(seed {result['seed']}). **embed is cached**: vectors computed beforehand by the same model "
            f"({result['embedding_seconds_when_cached']:.0f} s for {result['distinct_texts']} distinct texts), read "
            "from the database's embedding cache during the run.",
            "",
            markdown_table(header, rows),
            "",
            f"All stages but embedding, {first['items']} -> {last['items']} items: "
            f"{first['seconds_without_embedding']:.1f} s -> {last['seconds_without_embedding']:.1f} s "
            f"(x{growth:.1f}); peak memory at {last['items']}: {last['process_peak_mb']:.0f} MB for the whole process "
            "(reading the cached vectors included).",
            f"CPU seconds are the process's, all its threads (the neighbour search runs beside the evidence stage): "
            f"on {info['cpus']} CPUs no schedule of the same work ends sooner than CPU seconds / {info['cpus']}, "
            f"{last['cpu_seconds_without_embedding'] / (info['cpus'] or 1):.1f} s at {last['items']} items.",
            f"Database size (the file and its segments: articles, stories, members, both caches): {last['database_mb_per_100k_articles']:.0f} MB "
            "per 100k headline-only articles.",
            *_search_lines(result.get("closed_story_search")),
        ]
    )


def _search_lines(search: dict[str, Any] | None) -> list[str]:
    if not search:
        return []
    with_search, without = search["with_search"], search["without_search"]
    return [
        "",
        f"Closed-story search at {search['stored_stories']} stored stories: a run of {search['items']} later items on "
        f"the largest point's store takes {with_search['seconds_without_embedding']:.2f} s all but embedding with the "
        f"search ({search['search_seconds']:.3f} s in the `closed_stories` stage) and "
        f"{without['seconds_without_embedding']:.2f} s without it (`stories.reopen = false`): "
        f"{100 * search['added_share']:+.1f}%.",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="+", type=int)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args()
    config = load_config(None)
    largest = max(args.sizes)
    templates = templates_from([args.data / "uci-news-head", args.data / "ecbplus"])
    records, _ = generate(largest, templates, args.seed)
    # A later batch for the closed-story search: the last day of a stream one day longer.
    later = [dict(r, id=f"later-{r['id']}") for r in generate(largest + 2000, templates, args.seed)[0][-2000:]]
    CACHE.mkdir(parents=True, exist_ok=True)
    stream = CACHE / f"stream-{largest}-seed{args.seed}.jsonl"
    if not stream.exists():
        write_jsonl(records, stream)
    cache = vector_cache(stream, config)
    with tempfile.TemporaryDirectory() as work:
        points = [bench_point(n, records, Path(work), config, cache, keep=n == largest) for n in sorted(args.sizes)]
        search = closed_story_search(Path(work) / f"stream-{largest}.duckdb", later, Path(work))
    result = {
        "machine": machine(),
        "seed": args.seed,
        "distinct_texts": len(cache[0]),
        "embedding_seconds_when_cached": round(cache[2], 1),
        "points": points,
        "closed_story_search": search,
    }
    write_results(args.out, "scale", result, render(result))


if __name__ == "__main__":
    main()

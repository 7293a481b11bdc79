"""`make bench-archive`: a run's cost against everything stored before it (issue 22).

Stores, each holding one earlier 400-item run of uci-news-head (as in the issue) on top of the following
(and each synthetic archive also alone, without that run: only the archive then differs from `empty`):

- nothing (`small`), or nothing at all (`empty`, without that run);
- 20k, 100k or 1M older full-text articles, all their stories closed: synthetic (real ECB+ and gvc-val
  sentences drawn at random into 2-3 kB texts, random unit vectors, random MinHash signatures, stories of
  five members with three names each), sealed in segments of `store.segment_rows` as runs would leave them.
  Built once in `bench/cache/archive-<N>` and reused.

On a fresh copy of each store (the database file copied; its segments linked, they never change) two runs
are measured as whole `storyclust run` processes: 400 later uci-news-head items, and 1,000 later ones. The
vectors of the measured items are in the store's cache before the run (embedding is measured elsewhere:
this is about the store). Extra disk is what the run needs beside the store: its working copy of the
database file plus the segments it writes.

    python -m bench.archive --data ../shared/data
    python -m bench.archive --data ../shared/data --sizes 20000 --reps 1 --out /tmp/archive   # quick check
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import copy_store, machine, markdown_table, measured_run, stage_totals, store_bytes, write_results
from bench.scale import CACHE, embedded_contents, vector_cache
from pipeline.config import Config, load_config
from pipeline.dedup import signature_scheme
from pipeline.embed import model_id
from pipeline.stage import text_hash
from pipeline.store import Store
from pipeline.store.publish import mostly_free, rewrite_database
from pipeline.store.segments import segment_folder

READERS = ["report", "export", "stories", "prune"]
BUILD_VERSION = "v1"  # in the names of the built stores: change it when `build_archive` changes
EARLIER, FIRST_RUN, SECOND_RUN = slice(0, 400), slice(400, 800), slice(800, 1800)


def uci_items(data: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (data / "uci-news-head" / "docs.jsonl").read_text().splitlines() if line]


def sentence_pool(data: Path) -> tuple[list[str], list[str], list[str]]:
    """Sentences, titles and capitalised names of real articles, for synthetic ones."""
    sentences, titles = [], []
    for name in ("ecbplus", "gvc-val"):
        for line in (data / name / "docs.jsonl").read_text().splitlines():
            row = json.loads(line)
            if row.get("title"):
                titles.append(row["title"])
            sentences += [s.strip() for s in (row.get("text") or "").replace("\n", " ").split(". ") if len(s) > 40]
    names = sorted({w.strip(",.;:'\"") for s in titles for w in s.split() if w[:1].isupper() and len(w) > 3})
    return sentences, titles, names


def build_archive(target: Path, size: int, data: Path, config: Config, seed: int = 0) -> None:
    """A store of `size` synthetic full-text articles in closed stories, sealed as runs would seal them."""
    import pyarrow as pa

    rng = random.Random(seed)
    generator = np.random.default_rng(seed)
    sentences, titles, names = sentence_pool(data)
    model, scheme = model_id(config.embed), signature_scheme(config.near_duplicates)
    chunk = config.store.segment_rows
    start, step = datetime(2013, 2, 1), timedelta(days=365) / size  # the year before the uci-news-head items
    with Store(target) as store:
        for first in range(0, size, chunk):
            ids = list(range(first, min(first + chunk, size)))
            title = [f"{rng.choice(titles)} ({i})" for i in ids]
            text = [". ".join(rng.sample(sentences, rng.randint(14, 22))) + "." for _ in ids]
            when = [start + step * i for i in ids]
            content = [f"{t}\n{x}" for t, x in zip(title, text, strict=True)]
            articles = pa.table(
                {
                    "article_id": [f"arch-{i}" for i in ids],
                    "title": title,
                    "text": text,
                    "source": [f"site{i % 97}" for i in ids],
                    "url": [f"https://site{i % 97}.example/{i}" for i in ids],
                    "published_at": pa.array(when, pa.timestamp("us")),
                    "title_raw": title,
                    "text_raw": text,
                    "content_hash": [text_hash(c) for c in content],
                    "notes": pa.array([[] for _ in ids], pa.list_(pa.string())),
                    "input_file": ["archive.jsonl"] * len(ids),
                    "input_line": pa.array([i + 1 for i in ids], pa.int32()),
                }
            )
            store.db.register("new_articles", articles)
            store.db.execute("INSERT INTO hot_articles SELECT *, 'r-archive', now() FROM new_articles")
            store.db.unregister("new_articles")
            vectors = generator.standard_normal((len(ids), 384), dtype=np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            store.add_cached(
                "vectors",
                model,
                {text_hash(c[: config.embed.max_chars]): v for c, v in zip(content, vectors, strict=True)},
            )
            signatures = generator.integers(0, 2**32, (len(ids), config.near_duplicates.num_perm), dtype=np.uint32)
            store.add_cached("signatures", scheme, {text_hash(c): s for c, s in zip(content, signatures, strict=True)})
            stories = sorted({i // 5 for i in ids})
            members = pa.table(
                {
                    "story_id": [f"s-arch-{i // 5}" for i in ids],
                    "article_id": [f"arch-{i}" for i in ids],
                    "similarity": pa.array(generator.uniform(0.5, 0.9, len(ids)), pa.float32()),
                    "event_dates": pa.array([[w.date()] for w in when], pa.list_(pa.date32())),
                    "time_evidence": ["publication"] * len(ids),
                }
            )
            store.db.register("new_members", members)
            store.db.execute(
                "INSERT INTO story_members (story_id, article_id, similarity, event_dates, time_evidence, joined_run_id) "
                "SELECT *, 'r-archive' FROM (SELECT story_id, article_id, similarity, event_dates, time_evidence "
                "FROM new_members)"
            )
            store.db.unregister("new_members")
            heads = pa.table(
                {
                    "story_id": [f"s-arch-{s}" for s in stories],
                    "headline": [title[s * 5 - first] for s in stories],  # its first member's title
                    "first_seen": pa.array([start + step * 5 * s for s in stories], pa.timestamp("us")),
                    "day": pa.array([(start + step * 5 * s).date() for s in stories], pa.date32()),
                }
            )
            store.db.register("new_stories", heads)
            store.db.execute(
                "INSERT INTO stories (story_id, headline, size, sources, first_seen, last_seen, status, created_run_id, "
                "updated_run_id, updated_at, event_first, event_last) SELECT story_id, headline, 5, 3, first_seen, "
                "first_seen + INTERVAL 3 HOUR, 'open', 'r-archive', 'r-archive', first_seen, day, day FROM new_stories "
                "ON CONFLICT DO NOTHING"
            )
            store.db.unregister("new_stories")
            story_names = [(f"s-arch-{s}", rng.choice(names)) for s in stories for _ in range(3)]
            store.db.register(
                "new_names", pa.table({"story_id": [s for s, _ in story_names], "name": [n for _, n in story_names]})
            )
            store.db.execute("INSERT INTO story_names SELECT * FROM new_names")
            store.db.unregister("new_names")
            store.seal(f"r-archive-{first // chunk:05d}")
            print(f"\rbuilding {target.name}: {min(first + chunk, size):,} / {size:,}", end="", file=sys.stderr)
        store.db.execute("CHECKPOINT")
    rewrite_database(target)  # without the free blocks of the sealed rows, as a run leaves it
    print(file=sys.stderr)


def unsealed_copy(source: Path, target: Path) -> None:
    """The same store with every row back in the database file: the layout before segments, where each run
    copies the whole archive (run with `store.segment_rows` above the store's size, so it stays so)."""
    from pipeline.store.segments import ARCHIVED, active_files, refresh_views

    copy_store(source, target)
    with Store(target) as store:
        for name in ARCHIVED:
            files = [str(segment_folder(target) / f) for f in active_files(store.db, name)]
            if files:
                store.db.execute(f"INSERT INTO hot_{name} SELECT * FROM read_parquet(?, union_by_name = true)", [files])
        store.db.execute("DELETE FROM segments")
        refresh_views(store.db, store.segments)
        store.db.execute("CHECKPOINT")
    shutil.rmtree(segment_folder(target))


def reader_seconds(db: Path, work: Path) -> dict[str, float]:
    """Seconds of the readers' commands on a store: report, export (Parquet), stories, and a prune of all."""
    from bench.common import measure

    cli = [sys.executable, "-m", "pipeline.cli"]
    commands = {
        "report": [*cli, "report", "--db", str(db), "--out", str(work / "report.html")],
        "export": [*cli, "export", "--db", str(db), "--format", "parquet", "--out", str(work / "export")],
        "stories": [*cli, "stories", "--db", str(db), "--limit", "20"],
        "prune": [*cli, "prune", "--db", str(db), "--older-than-days", "0"],
    }
    found = {}
    for name, command in commands.items():
        result = measure(command, {"HF_HUB_OFFLINE": "1"})
        if result.returncode != 0:
            raise SystemExit(f"{name} failed: {result.stderr.strip().splitlines()[-1:]}")
        found[name] = result.seconds
    shutil.rmtree(work / "export", ignore_errors=True)
    (work / "report.html").unlink(missing_ok=True)
    return found


def seed_vectors(db: Path, items: Path, config: Config, index: dict[str, int], vectors: np.ndarray) -> None:
    keys = {text_hash(t) for t in embedded_contents(items, config)}
    with Store(db) as store:
        store.add_cached("vectors", model_id(config.embed), {k: vectors[index[k]] for k in keys})


def write_items(rows: list[dict[str, Any]], path: Path) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--sizes", type=int, nargs="*", default=[20_000, 100_000, 1_000_000])
    parser.add_argument("--reps", type=int, default=3, help="runs per store and batch (the median is reported)")
    parser.add_argument(
        "--unsealed", type=int, nargs="*", default=[20_000, 100_000],
        help="sizes also measured with every row in the database file (the layout before segments)",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args()
    config = load_config(None)
    uci = uci_items(args.data)
    CACHE.mkdir(parents=True, exist_ok=True)
    all_items = write_items(uci[: SECOND_RUN.stop], CACHE / "archive-uci-1800.jsonl")
    index, vectors, _ = vector_cache(all_items, config)

    with tempfile.TemporaryDirectory(dir=CACHE) as scratch:
        work = Path(scratch)
        earlier = write_items(uci[EARLIER], work / "earlier.jsonl")
        batches = {
            "400 items": write_items(uci[FIRST_RUN], work / "run-400.jsonl"),
            "1,000 items": write_items(uci[SECOND_RUN], work / "run-1000.jsonl"),
        }
        stores: dict[str, Path] = {"empty": work / "empty.duckdb"}
        Store(stores["empty"]).close()
        for size in [0, *args.sizes]:
            name = "small" if not size else f"{size:,} older"
            built = CACHE / f"archive-{BUILD_VERSION}-{size}.duckdb"
            if size and not built.exists():
                build_archive(built, size, args.data, config)
            if size:  # what the next run does to a store of an older storyclust: migrate, then write it anew
                with Store(built) as store:
                    compact = not mostly_free(store.db)
                if not compact:
                    rewrite_database(built)
            db = work / f"store-{size}.duckdb"
            if size:
                copy_store(built, db)
                alone = work / f"store-{size}-alone.duckdb"  # the archive alone: no recent stories to join
                copy_store(built, alone)
                stores[f"{size:,} older alone"] = alone
            seed_vectors(db, earlier, config, index, vectors)
            measured_run([earlier], db, what=" (the earlier run)")
            stores[name] = db
            if size in args.unsealed:
                unsealed = work / f"store-{size}-unsealed.duckdb"
                unsealed_copy(db, unsealed)
                stores[f"{name}, unsealed"] = unsealed
        keep_all = work / "unsealed.toml"
        keep_all.write_text("[store]\nsegment_rows = 10000000\n", encoding="utf-8")

        rows, result = [], {"machine": machine(), "segment_rows": config.store.segment_rows, "stores": {}}
        for name, source in stores.items():
            size = store_bytes(source)
            found: dict[str, Any] = {"store_mb": round(size / 2**20, 1), "runs": {}}
            for batch, items in batches.items():
                times, publishes, extras = [], [], []
                for rep in range(args.reps):
                    db = work / f"run-{rep}.duckdb"
                    copy_store(source, db)
                    seed_vectors(db, items, config, index, vectors)
                    before = {p.name for p in segment_folder(db).glob("*")}
                    config_file = keep_all if "unsealed" in name else None
                    measured = measured_run([items], db, config_file, what=f" on {name}")
                    stages = stage_totals(measured.stderr)
                    written = sum(p.stat().st_size for p in segment_folder(db).glob("*") if p.name not in before)
                    times.append(measured.seconds)
                    publishes.append(stages.get("publish", {}).get("seconds", 0.0))
                    extras.append(source.stat().st_size + written)  # the working copy, and the new segments
                    if batch == "1,000 items" and rep == 0 and name != "empty" and "alone" not in name:
                        found["readers"] = reader_seconds(db, work)
                    db.unlink()
                    shutil.rmtree(segment_folder(db), ignore_errors=True)
                found["runs"][batch] = {
                    "seconds": statistics.median(times),
                    "all_seconds": times,
                    "publish_seconds": statistics.median(publishes),
                    "extra_disk_mb": round(max(extras) / 2**20, 1),
                    "extra_disk_share": round(max(extras) / max(size, 1), 4),
                }
            result["stores"][name] = found
        base = {batch: result["stores"]["small"]["runs"][batch]["seconds"] for batch in batches}
        empty = {batch: result["stores"]["empty"]["runs"][batch]["seconds"] for batch in batches}
        for name, found in result["stores"].items():
            for batch, run in found["runs"].items():
                run["x_small"] = round(run["seconds"] / base[batch], 2)  # an unsealed store: against its own small
                run["x_empty"] = round(run["seconds"] / empty[batch], 2)
                rows.append(
                    [name, found["store_mb"], batch, run["seconds"], run["x_small"], run["x_empty"],
                     run["publish_seconds"], run["extra_disk_mb"], f"{100 * run['extra_disk_share']:.1f}%"]
                )  # fmt: skip
    text = "\n".join(
        [
            f"# Archive: a run's cost against the store's size, {result['machine']['date']}",
            "",
            "Each run is a whole `storyclust run` process on a fresh copy of the store, its items' vectors "
            f"cached (median of {args.reps}). Stores hold one earlier 400-item uci-news-head run on top of the "
            "synthetic full-text archive named (`empty`: nothing at all). Extra disk: the run's working copy "
            f"of the database file plus the segments it writes (`store.segment_rows` = {config.store.segment_rows}).",
            "",
            markdown_table(
                ["store", "store MB", "run", "s", "× small", "× empty", "publish s", "extra disk MB", "extra/store"],
                rows,
            ),
            "",
            "Readers' commands on each store after its 1,000-item run (seconds; `prune` deletes every story):",
            "",
            markdown_table(
                ["store", *READERS],
                [
                    [name, *(found.get("readers", {}).get(r) for r in READERS)]
                    for name, found in result["stores"].items()
                ],
            ),
            "",
            "`unsealed`: the same store with every row in the database file, as before segments: each run copies "
            "the whole file.",
            "",
            "`alone`: the synthetic archive without the earlier 400-item run, so the new items find no recent "
            "stories to join: only the archive differs from `empty`.",
            "",
            "Targets (issue 22): 400 items on 20k older articles ≤ 1.25× small; 1,000 items on 100k and 1M "
            "≤ 1.5× empty, with extra disk ≤ 10% of the store.",
        ]
    )
    write_results(args.out, "archive", result, text)


if __name__ == "__main__":
    main()

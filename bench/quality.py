"""`make bench`, part 4: quality alone, in company, and of the headlines, on the labelled sets.

1. Each labelled set alone: a cold `storyclust run` into a fresh database, BCubed P/R/F1 and the
   headline scores of `bench.headlines`.
2. All labelled sets as one batch: each set scored on its own items, and the stories holding items of
   two sets counted (the sets share no event, so each such story is a false merge).
3. gvc-val and ECB+ mixed into the first `--stream` items of the `bench.stream` stream that retell
   uci-news-head stories (its ECB+-made items retell ECB+'s own events, so they are left out; the vectors
   are those of `make bench-scale`, computed once into `bench/cache/`): the same scores on the labelled items.

Every run is the real CLI on a real file; the company runs start from the alone runs' caches so that
the same vectors are used and no text is embedded twice.

    python -m bench.quality ../shared/data --stream 50000
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.common import machine, markdown_table, measure, uncapped_config, write_results
from bench.headlines import RULES, headline_scores
from bench.slices import memberships
from pipeline.config import load_config
from pipeline.evaluate import read_gold, score

SETS = ("gvc-val", "ecbplus", "uci-news-head")


def cli_run(inputs: list[Path], db: Path) -> None:
    command = [sys.executable, "-m", "pipeline.cli", "run", *map(str, inputs), "--db", str(db), "-q"]
    command += ["--config", str(uncapped_config(db.parent))]
    result = measure(command, {"HF_HUB_OFFLINE": "1"})
    if result.returncode != 0:
        raise SystemExit(f"storyclust run failed: {result.stderr.strip().splitlines()[-1:]}")


def seed_caches(db: Path, sources: list[Path]) -> None:
    """Copy the embedding and MinHash caches of earlier databases into a fresh one."""
    from pipeline.store import Store

    with Store(db) as store:
        for number, source in enumerate(sources):
            store.db.execute(f"ATTACH '{source}' AS source{number} (READ_ONLY)")
            for table in ("embedding_cache", "minhash_cache"):
                store.db.execute(f"INSERT INTO hot_{table} SELECT * FROM source{number}.{table} ON CONFLICT DO NOTHING")
            store.db.execute(f"DETACH source{number}")


def scores_in(predicted: dict[str, str], gold: dict[str, str]) -> dict[str, float]:
    found = score(predicted, gold)
    return {"f1": found.bcubed_f1, "precision": found.bcubed_precision, "recall": found.bcubed_recall}


def mixed_stories(predicted: dict[str, str], origin: dict[str, str]) -> int:
    """Stories that hold items of more than one origin (labelled set or stream)."""
    origins: dict[str, set[str]] = {}
    for item, story in predicted.items():
        if item in origin:
            origins.setdefault(story, set()).add(origin[item])
    return sum(1 for found in origins.values() if len(found) > 1)


def bench(data: Path, stream_items: int, work: Path) -> dict[str, Any]:
    golds = {name: read_gold(data / name / "gold.jsonl") for name in SETS}
    alone: dict[str, Any] = {}
    for name in SETS:
        print(f"[quality] {name} alone", file=sys.stderr)
        db = work / f"alone-{name}.duckdb"
        cli_run([data / name / "docs.jsonl"], db)
        alone[name] = {**scores_in(memberships(db), golds[name]), "headlines": headline_scores(db)}

    print("[quality] all labelled sets in one batch", file=sys.stderr)
    mixed_db = work / "mixed.duckdb"
    seed_caches(mixed_db, [work / f"alone-{name}.duckdb" for name in SETS])
    cli_run([data / name / "docs.jsonl" for name in SETS], mixed_db)
    predicted = memberships(mixed_db)
    origin = {item: name for name in SETS for item in golds[name]}
    mixed = {name: scores_in(predicted, golds[name]) for name in SETS}
    mixed_cross = mixed_stories(predicted, origin)

    stream_result: dict[str, Any] = {}
    if stream_items:
        from bench.scale import CACHE, seed_database, vector_cache
        from bench.stream import generate, named_templates, write_jsonl

        print(f"[quality] gvc-val and ecbplus in a {stream_items}-item stream", file=sys.stderr)
        config = load_config(None)
        templates = named_templates([data / "uci-news-head", data / "ecbplus"])
        records, stream_gold = generate(200_000, [t for _, t in templates], 0)  # bench-scale's: vectors cached
        full = CACHE / "stream-200000-seed0.jsonl"
        if not full.exists():
            write_jsonl(records, full)
        index, vectors, _ = vector_cache(full, config)
        # Only the items made from uci-news-head headlines: the stream's ECB+ items retell ECB+'s own events.
        unrelated = [
            record
            for record, row in zip(records, stream_gold, strict=True)
            if templates[row["template"]][0].startswith("uci-news-head/")
        ][:stream_items]
        records = unrelated
        part = work / f"stream-{stream_items}.jsonl"
        write_jsonl(records, part)
        stream_db = work / "stream.duckdb"
        seed_database(stream_db, part, config, index, vectors)
        seed_caches(stream_db, [work / "alone-gvc-val.duckdb", work / "alone-ecbplus.duckdb"])
        labelled = ("gvc-val", "ecbplus")
        cli_run([part, *(data / name / "docs.jsonl" for name in labelled)], stream_db)
        predicted = memberships(stream_db)
        origin = {item: name for name in labelled for item in golds[name]}
        origin |= {record["id"]: "stream" for record in records}
        stream_result = {
            "items": stream_items,
            "sets": {name: scores_in(predicted, golds[name]) for name in labelled},
            "mixed_stories": mixed_stories(predicted, origin),
        }
    return {
        "machine": machine(),
        "alone": alone,
        "mixed": mixed,
        "mixed_stories": mixed_cross,
        "stream": stream_result,
    }


def render(result: dict[str, Any]) -> str:
    alone, mixed, stream = result["alone"], result["mixed"], result["stream"]

    def cell(found: dict[str, float]) -> str:
        return f"{found['f1']:.3f} (P {found['precision']:.3f}, R {found['recall']:.3f})"

    rows = []
    for name in SETS:
        in_stream = stream.get("sets", {}).get(name)
        rows.append(
            [
                name,
                cell(alone[name]),
                cell(mixed[name]),
                f"{mixed[name]['f1'] - alone[name]['f1']:+.3f}",
                cell(in_stream) if in_stream else "",
                f"{in_stream['f1'] - alone[name]['f1']:+.3f}" if in_stream else "",
            ]
        )
    header = ["set", "alone", "all sets in one batch", "Δ", f"in a {stream.get('items', 0)}-item stream", "Δ"]
    headline_rows = [
        [name, alone[name]["headlines"]["stories"], *[alone[name]["headlines"][r] for r in RULES]] for name in SETS
    ]
    info = result["machine"]
    return "\n".join(
        [
            f"# Quality alone and in company, {info['date']}",
            "",
            f"Machine: {info['cpu']}, {info['cpus']} CPUs. Default config, the real CLI on real files; BCubed F1 "
            "(precision, recall) of each set's own items.",
            "",
            markdown_table(header, rows),
            "",
            f"Stories holding items of two labelled sets in the one-batch run: **{result['mixed_stories']}**; "
            f"stories holding items of two of gvc-val, ECB+ and the stream: **{stream.get('mixed_stories', 'n/a')}**.",
            "",
            "## Canonical headlines",
            "",
            "Mean shared-fact F1 of the headline each rule picks (`bench/headlines.py`: recall of the names and "
            "numbers most members share, precision of the title's words by how many members share them), over "
            "the stories of two or more titled members of each alone run.",
            "",
            markdown_table(["set", "stories", *RULES], headline_rows),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="folder with the labelled sets")
    parser.add_argument("--stream", type=int, default=50_000, help="stream items to mix in (0: skip)")
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        result = bench(args.data, args.stream, Path(work))
    write_results(args.out, "quality", result, render(result))


if __name__ == "__main__":
    main()

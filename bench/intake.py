"""`make bench-intake`: peak memory of whole runs over a 1 GB JSON Lines file and a 1M-row CSV, with
`run.max_items` at its default, and proof that the items beyond the cap are taken by the following runs.

The files repeat the 200k-item `bench.stream` stream with a new id per repetition, so every item is new but
its vector is already in the embedding cache (embedding is measured elsewhere: this is about reading and
memory). Each run is a whole `storyclust run` process; its peak resident memory comes from wait4. Reading a
whole file through `iter_ingest` is measured too (the worst case of a run that finds little new).

    python -m bench.intake --data ../shared/data
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import duckdb

from bench.common import machine, markdown_table, measure, write_results
from bench.scale import CACHE, seed_database, vector_cache
from bench.stream import generate, templates_from, write_jsonl
from pipeline.config import load_config

RUNS = 3
READ_ALL = (
    "import sys; from pipeline.config import InputConfig; from pipeline.ingest import iter_ingest\n"
    "print(sum(1 for _ in iter_ingest([sys.argv[1]], InputConfig())))"
)


def repeated(records: list[dict[str, Any]]) -> Any:
    """The stream's records again and again, each repetition with its own ids."""
    cycle = 0
    while True:
        for record in records:
            yield {**record, "id": f"{record['id']}-r{cycle}"}
        cycle += 1


def write_big_jsonl(records: list[dict[str, Any]], target: Path, size_bytes: int) -> int:
    lines = 0
    with target.open("w", encoding="utf-8") as out:
        for record in repeated(records):
            if out.tell() >= size_bytes:
                break
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            lines += 1
    return lines


def write_big_csv(records: list[dict[str, Any]], target: Path, rows: int) -> int:
    columns = ["id", "title", "text", "source", "url", "published_at"]
    with target.open("w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for number, record in enumerate(repeated(records)):
            if number >= rows:
                break
            writer.writerow(record)
    return rows


def runs_over(big: Path, db: Path, cap: int) -> list[dict[str, Any]]:
    """RUNS whole runs over the same file: what each took, its peak memory, and where it stopped."""
    results = []
    for number in range(1, RUNS + 1):
        command = [sys.executable, "-m", "pipeline.cli", "run", str(big), "--db", str(db), "-q", "--log-format", "json"]
        done = measure(command, {"HF_HUB_OFFLINE": "1"})
        if done.returncode != 0:
            raise SystemExit(f"run {number} over {big.name} failed: {done.stderr.strip().splitlines()[-1:]}")
        summary = next(json.loads(line) for line in done.stderr.splitlines() if '"stage": "summary"' in line)
        with duckdb.connect(str(db), read_only=True) as con:
            stored, last_line = con.execute("SELECT count(*), max(input_line) FROM articles").fetchone()
        results.append(
            {
                "run": number,
                "new": summary["articles_new"],
                "waiting": summary["waiting"],
                "stored_after": stored,
                "last_line_stored": last_line,
                "in_order": stored == number * cap,
                "seconds": done.seconds,
                "peak_mb": done.peak_mb,
            }
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--jsonl-bytes", type=int, default=1 << 30)
    parser.add_argument("--csv-rows", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args()
    config = load_config(None)
    cap = config.run.max_items
    templates = templates_from([args.data / "uci-news-head", args.data / "ecbplus"])
    records, _ = generate(200_000, templates, 0)
    stream = CACHE / "stream-200000-seed0.jsonl"
    if not stream.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        write_jsonl(records, stream)
    cache = vector_cache(stream, config)
    files: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as work:
        folder = Path(work)
        seeded = folder / "seeded.duckdb"
        seed_database(seeded, stream, config, cache[0], cache[1])
        for name, write, amount in (
            ("news.jsonl", write_big_jsonl, args.jsonl_bytes),
            ("news.csv", write_big_csv, args.csv_rows),
        ):
            big = folder / name
            items = write(records, big, amount)
            db = folder / f"{name}.duckdb"
            db.write_bytes(seeded.read_bytes())
            runs = runs_over(big, db, cap)
            read_all = measure([sys.executable, "-c", READ_ALL, str(big)])
            files.append(
                {
                    "file": name,
                    "items": items,
                    "megabytes": round(big.stat().st_size / 2**20, 1),
                    "runs": runs,
                    "read_all_seconds": read_all.seconds,
                    "read_all_peak_mb": read_all.peak_mb,
                    "read_all_items": int(read_all.stdout.strip() or 0),
                }
            )
            big.unlink()
            db.unlink()
    result = {"machine": machine(), "max_items": cap, "files": files}
    write_results(args.out, "intake", result, render(result))


def render(result: dict[str, Any]) -> str:
    lines = [
        f"# Intake: big files at run.max_items = {result['max_items']}, {result['machine']['date']}",
        "",
        "Each run is a whole `storyclust run` process over the same file (vectors cached: this measures reading, "
        "clustering and memory, not embedding). Peak memory is the process's own resident high-water mark (VmHWM).",
        "",
    ]
    for entry in result["files"]:
        rows = [
            [r["run"], r["new"], r["waiting"], r["stored_after"], r["last_line_stored"], r["in_order"], r["seconds"], r["peak_mb"]]
            for r in entry["runs"]
        ]  # fmt: skip
        lines += [
            f"## {entry['file']}: {entry['items']:,} items, {entry['megabytes']:,} MB",
            "",
            markdown_table(["run", "new", "more waiting", "stored after", "last line stored", "in order", "s", "peak MB"], rows),
            "",
            f"Reading the whole file through the streaming readers: {entry['read_all_items']:,} records in "
            f"{entry['read_all_seconds']} s, peak {entry['read_all_peak_mb']} MB.",
            "",
        ]  # fmt: skip
    worst = max(r["peak_mb"] for entry in result["files"] for r in entry["runs"])
    lines.append(f"Highest peak of any run: {worst:.0f} MB (target: under 2048 MB).")
    return "\n".join(lines)


if __name__ == "__main__":
    main()

"""`make bench-intake`: peak memory of whole runs over a 1 GB JSON Lines file, a 1M-row CSV, a 1 GB gzipped
JSON Lines file and a 1 GB gzipped WARC file, with `run.max_items` at its default, and proof that the items
beyond the cap are taken by the following runs; for the WARC, the extraction rate in pages per second.

The JSON Lines and CSV files repeat the 200k-item `bench.stream` stream with a new id per repetition, so every
item is new but its vector is already in the embedding cache (embedding is measured elsewhere: this is about
reading and memory). The WARC holds one article page per stream item (its headline, five sentences of ECB+
articles, a site's usual navigation and scripts), each record gzipped on its own as crawlers write them; the
vectors of the pages its runs take are computed once and kept in bench/cache, so its runs do not embed
either. Each run is a whole `storyclust run` process; its peak resident memory comes from /proc. Reading a
whole file through `iter_ingest` is measured too (the worst case of a run that finds little new); for the
WARC, its first `--warc-read-pages` pages only (extraction takes minutes per 10,000 pages).

    python -m bench.intake --data ../shared/data
    python -m bench.intake --data ../shared/data --jsonl-bytes 2000000 --csv-rows 5000 --jsonl-gz-bytes 500000 \
        --warc-gz-bytes 2000000 --out /tmp/intake   # a quick check that it runs
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import random
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

import duckdb

from bench.common import machine, markdown_table, measure, write_results
from bench.scale import CACHE, seed_database, vector_cache
from bench.stream import generate, templates_from, write_jsonl
from pipeline.config import load_config

RUNS = 3
# Reads the file named first through the streaming readers; with a second argument, that many items at most.
READ_ALL = (
    "import itertools, sys; from pipeline.config import InputConfig; from pipeline.ingest import iter_ingest\n"
    "limit = int(sys.argv[2]) if len(sys.argv) > 2 else None\n"
    "print(sum(1 for _ in itertools.islice(iter_ingest([sys.argv[1]], InputConfig()), limit)))"
)
PAGE_VERSION = "v1"  # in the names of cached page vectors: change it when `article_page` changes
# What a news site wraps around every article: the same script on every page, and one that differs.
SITE_SCRIPT = "window.dataLayer = window.dataLayer || []; function gtag(){dataLayer.push(arguments);}\n" * 400


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


def write_big_jsonl_gz(records: list[dict[str, Any]], target: Path, size_bytes: int) -> int:
    """`write_big_jsonl`, gzipped as a spool is kept, until the compressed file holds `size_bytes`."""
    lines = 0
    with target.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0) as out:
        for record in repeated(records):
            if lines and lines % 1000 == 0 and raw.tell() >= size_bytes:
                break
            out.write((json.dumps(record, ensure_ascii=False) + "\n").encode())
            lines += 1
    return lines


def article_page(record: dict[str, Any], sentences: list[str], neighbours: list[str], rng: random.Random) -> bytes:
    """One news page around a stream item: metadata in the head, navigation, the article, scripts."""
    body = "".join(f"<p>{escape(sentence)}</p>" for sentence in rng.sample(sentences, 5))
    nav = "".join(f'<li><a href="/story/{rng.getrandbits(40):x}">{escape(title)}</a></li>' for title in neighbours)
    tracking = "".join(f'"{rng.getrandbits(64):016x}",' for _ in range(1000))
    title, source = escape(record["title"]), escape(record.get("source") or "Wire")
    url = f"https://{source.lower().replace(' ', '')}.example/{record['id']}"
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title} | {source}</title>'
        f'<meta property="og:title" content="{title}"><meta property="og:site_name" content="{source}">'
        f'<meta property="article:published_time" content="{record["published_at"]}"><link rel="canonical" href="{url}">'
        f"<script>{SITE_SCRIPT}</script></head><body><header><nav><ul>{nav}</ul></nav></header>"
        f"<main><article><h1>{title}</h1>{body}</article></main>"
        f"<aside><h2>Most read</h2><ul>{nav}</ul></aside><footer>© {source}. All rights reserved.</footer>"
        f"<script>var ids = [{tracking}];</script></body></html>"
    ).encode()


def article_pages(records: list[dict[str, Any]], sentences: list[str]) -> Iterator[tuple[str, bytes]]:
    """(url, page) for each item of the endless stream, the same every time."""
    rng = random.Random(21)
    titles = [record["title"] for record in records]
    for number, record in enumerate(repeated(records)):
        start = number % len(titles)
        yield f"https://crawl.example/{record['id']}", article_page(record, sentences, titles[start : start + 20], rng)


def write_big_warc_gz(pages: Iterator[tuple[str, bytes]], target: Path, size_bytes: int) -> int:
    """A WARC of one response record per page, each record gzipped on its own, until it holds `size_bytes`."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    count = 0
    with target.open("wb") as out:
        writer = WARCWriter(out, gzip=True)
        for url, page in pages:
            if out.tell() >= size_bytes:
                break
            headers = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1")
            writer.write_record(
                writer.create_warc_record(url, "response", payload=io.BytesIO(page), http_headers=headers)
            )
            count += 1
    return count


def ecb_sentences(data: Path) -> list[str]:
    """Sentences of the ECB+ articles, for page bodies: real prose, each page its own mix."""
    sentences = []
    for line in (data / "ecbplus" / "docs.jsonl").read_text(encoding="utf-8").splitlines():
        sentences += [part.strip() for part in json.loads(line)["text"].split("\n") if len(part.split()) >= 8]
    return sentences


def runs_over(big: Path, db: Path, cap: int, runs: int = RUNS) -> list[dict[str, Any]]:
    """`runs` whole runs over the same file: what each took, its peak memory, its reading rate, and where it stopped."""
    results = []
    for number in range(1, runs + 1):
        command = [sys.executable, "-m", "pipeline.cli", "run", str(big), "--db", str(db), "-q", "--log-format", "json"]
        done = measure(command, {"HF_HUB_OFFLINE": "1"})
        if done.returncode != 0:
            raise SystemExit(f"run {number} over {big.name} failed: {done.stderr.strip().splitlines()[-1:]}")
        summary = next(json.loads(line) for line in done.stderr.splitlines() if '"stage": "summary"' in line)
        ingest = next(json.loads(line) for line in done.stderr.splitlines() if '"stage": "ingest"' in line)
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
                "read_per_second": round(ingest["records"] / ingest["seconds"], 1) if ingest["seconds"] else None,
            }
        )
    return results


@dataclass
class BigFile:
    """One file of the benchmark: how to write it, how big, how many runs over it, how much to read whole."""

    name: str
    write: Callable[[Path], int]
    runs: int = RUNS
    read_limit: int | None = None
    seed: Callable[[Path, int], None] | None = None  # (db, items): a fresh database with the vectors its runs need


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--jsonl-bytes", type=int, default=1 << 30)
    parser.add_argument("--csv-rows", type=int, default=1_000_000)
    parser.add_argument("--jsonl-gz-bytes", type=int, default=1 << 30, help="size of the gzipped JSON Lines file")
    parser.add_argument("--warc-gz-bytes", type=int, default=1 << 30, help="size of the gzipped WARC file")
    parser.add_argument("--warc-runs", type=int, default=1, help="runs over the WARC (each extracts max_items pages)")
    parser.add_argument("--warc-read-pages", type=int, default=5000, help="pages read through the reader alone")
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
    sentences = ecb_sentences(args.data)

    def seed_pages(db: Path, pages: int) -> None:
        """A database holding the vectors of the pages the WARC runs take (computed once, kept in bench/cache)."""
        taken = min(pages, args.warc_runs * cap)
        sample = CACHE / f"pages-{PAGE_VERSION}-{taken}.warc.gz"
        if not sample.exists():
            write_big_warc_gz(_first(article_pages(records, sentences), taken), sample, 1 << 62)
        pages_cache = vector_cache(sample, config)
        seed_database(db, sample, config, pages_cache[0], pages_cache[1], every=True)

    big_files = [
        BigFile("news.jsonl", lambda path: write_big_jsonl(records, path, args.jsonl_bytes)),
        BigFile("news.csv", lambda path: write_big_csv(records, path, args.csv_rows)),
        BigFile("news.jsonl.gz", lambda path: write_big_jsonl_gz(records, path, args.jsonl_gz_bytes)),
        BigFile(
            "news.warc.gz",
            lambda path: write_big_warc_gz(article_pages(records, sentences), path, args.warc_gz_bytes),
            runs=args.warc_runs,
            read_limit=args.warc_read_pages,
            seed=seed_pages,
        ),
    ]
    files: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as work:
        folder = Path(work)
        seeded = folder / "seeded.duckdb"
        seed_database(seeded, stream, config, cache[0], cache[1])
        for spec in big_files:
            files.append(measure_file(spec, folder, seeded, cap))
    result = {"machine": machine(), "max_items": cap, "files": files}
    write_results(args.out, "intake", result, render(result))


def measure_file(spec: BigFile, folder: Path, seeded: Path, cap: int) -> dict[str, Any]:
    """Write one big file, run over it, read it whole (or its first `read_limit` items), and delete it."""
    big = folder / spec.name
    items = spec.write(big)
    db = folder / f"{spec.name}.duckdb"
    if spec.seed is None:
        db.write_bytes(seeded.read_bytes())
    else:
        spec.seed(db, items)
    runs = runs_over(big, db, cap, spec.runs)
    limit = [str(spec.read_limit)] if spec.read_limit is not None else []
    read_all = measure([sys.executable, "-c", READ_ALL, str(big), *limit])
    read_items = int(read_all.stdout.strip() or 0)
    entry = {
        "file": spec.name,
        "items": items,
        "megabytes": round(big.stat().st_size / 2**20, 1),
        "runs": runs,
        "read_all_seconds": read_all.seconds,
        "read_all_peak_mb": read_all.peak_mb,
        "read_all_items": read_items,
        "read_all_limit": spec.read_limit,
        "read_all_per_second": round(read_items / read_all.seconds, 1) if read_all.seconds else None,
    }
    big.unlink()
    db.unlink()
    return entry


def _first(pages: Iterator[tuple[str, bytes]], count: int) -> Iterator[tuple[str, bytes]]:
    for number, page in enumerate(pages):
        if number >= count:
            return
        yield page


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
            [r["run"], r["new"], r["waiting"], r["stored_after"], r["last_line_stored"], r["in_order"], r["seconds"], r.get("read_per_second"), r["peak_mb"]]
            for r in entry["runs"]
        ]  # fmt: skip
        what = "pages" if entry["file"].endswith((".warc", ".warc.gz")) else "records"
        whole = "the whole file" if not entry.get("read_all_limit") else f"its first {entry['read_all_limit']:,} {what}"
        lines += [
            f"## {entry['file']}: {entry['items']:,} items, {entry['megabytes']:,} MB",
            "",
            markdown_table(["run", "new", "more waiting", "stored after", "last line stored", "in order", "s", f"{what} read/s", "peak MB"], rows),
            "",
            f"Reading {whole} through the streaming readers: {entry['read_all_items']:,} {what} in "
            f"{entry['read_all_seconds']} s ({entry.get('read_all_per_second')} {what}/s), peak {entry['read_all_peak_mb']} MB.",
            "",
        ]  # fmt: skip
    worst = max(r["peak_mb"] for entry in result["files"] for r in entry["runs"])
    lines.append(f"Highest peak of any run: {worst:.0f} MB (target: under 2048 MB).")
    return "\n".join(lines)


if __name__ == "__main__":
    main()

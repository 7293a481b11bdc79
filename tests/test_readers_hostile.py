"""The hostile corpus (tests/fixtures/hostile/): nothing in an input file may stop the cron job.

Every file there is named after its fault; EXPECTED says what ingest must make of it. Big inputs are
made here at run time (committed fixtures stay small). The whole corpus is also run through the job,
in-process with the fake model, and once through the real CLI (slow).
"""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import duckdb
import pytest

from pipeline.config import Config, InputConfig
from pipeline.ingest import IngestResult, feeds, files, html, ingest
from pipeline.records import FileReject, RawRecord, Reject
from tests.fixtures.make_hostile import HOSTILE, build

# What ingest must make of a file: (records, reject reasons in line order (prefixes), file reject reason
# (prefix) or None).
Outcome = tuple[int, list[str], str | None]


def read_to_end(records: int, *rejects: str) -> Outcome:
    """A file read to its end: `records` stored and a reject per reason prefix, in line order."""
    return records, list(rejects), None


def file_rejected(reason: str, records: int = 0) -> Outcome:
    """A file not read, or not to its end (a `FileReject` with this reason prefix), `records` stored before."""
    return records, [], reason


EXPECTED: dict[str, Outcome] = {
    # Good files, read whole.
    "good.jsonl": read_to_end(3),
    "good.csv": read_to_end(3),
    "good.parquet": read_to_end(3),
    "good.rss": read_to_end(3),
    "good-digest.txt": read_to_end(3),
    # JSON Lines.
    "deep-nesting.jsonl": read_to_end(1, "malformed JSON: nested too deeply"),
    "crlf.jsonl": read_to_end(3),
    "cr-only.jsonl": read_to_end(3),
    "bom.jsonl": read_to_end(3),
    "nul-bytes.jsonl": read_to_end(2, "malformed JSON: Invalid control character", "malformed JSON: Expecting value"),
    "wrong-types.jsonl": read_to_end(
        2,
        "wrong field type: title is int",
        "wrong field type: text is list",
        "wrong field type: id is float",
        "wrong field type: id is bool",
        "wrong field type: source is dict",
    ),
    "zero-bytes.jsonl": file_rejected("empty file (0 bytes)"),
    "blank-lines.jsonl": read_to_end(0),
    "binary.jsonl": file_rejected("binary data, not JSON Lines"),
    "latin1.jsonl": read_to_end(1, "invalid UTF-8 at byte 31"),
    "parquet-in-disguise.jsonl": file_rejected(
        "a Parquet file, not JSON Lines (starts with b'PAR1'); rename it .parquet"
    ),
    "gzipped.jsonl": read_to_end(3),  # compressed files are opened by their content, whatever their name
    "pretty-array.json": read_to_end(3),  # .json: a document (here an array of records) or JSON Lines
    "pretty-document.jsonl": file_rejected("a pretty-printed JSON document, not JSON Lines"),
    "truncated.jsonl": read_to_end(2, "malformed JSON: Unterminated string"),
    "lone-surrogate.jsonl": read_to_end(1, "bad encoding: title holds a lone surrogate"),
    "huge-number.jsonl": read_to_end(2, "malformed JSON: number too long"),
    "long-id.jsonl": read_to_end(1, "id too long: 1,500 chars (limit 1,000)"),
    "utf16.jsonl": file_rejected("UTF-16 text, not JSON Lines"),
    "html-error-page.jsonl": file_rejected("XML or HTML, not JSON Lines"),
    "not-objects.jsonl": read_to_end(
        1, "malformed record: a JSON list", "malformed record: a JSON str", *["malformed record"] * 2
    ),
    # CSV.
    "missing-columns.csv": file_rejected(
        "no title or text column (found: headline, body, date); map them in [input.fields]"
    ),
    "latin1.csv": read_to_end(2, "invalid UTF-8 at byte 5 of line 3"),
    "bom.csv": read_to_end(1),
    "unclosed-quote.csv": read_to_end(1, "malformed CSV: unexpected end of data (lines 3-4)"),
    "ragged.csv": read_to_end(2, "malformed CSV row: more fields than the header"),
    "header-only.csv": read_to_end(0),
    "nul-bytes.csv": read_to_end(1),
    "gzipped.csv": read_to_end(1),
    "crlf-multiline.csv": read_to_end(2),
    "semicolons.csv": file_rejected("no title or text column (found: id;title;text)"),
    "duplicate-columns.csv": read_to_end(1),
    "bad-quoting.csv": read_to_end(1, "malformed CSV: ',' expected after '\"'"),
    # Parquet.
    "truncated.parquet": file_rejected("truncated Parquet file (no PAR1 magic at the end"),
    "empty.parquet": read_to_end(0),
    "zero-bytes.parquet": file_rejected("empty file (0 bytes)"),
    "not-parquet.parquet": file_rejected("not a Parquet file (no PAR1 magic at the start"),
    "corrupt-footer.parquet": file_rejected("not a readable Parquet file"),
    "missing-columns.parquet": file_rejected("no title or text column (found: headline, body)"),
    "wrong-types.parquet": read_to_end(0, *["wrong field type: title is int"] * 2),
    "corrupt-row-group.parquet": file_rejected("row group 3 of 3 unreadable, rows 21-30 lost", 20),
    # RSS and Atom.
    "not-a-feed.rss": file_rejected("not a readable RSS or Atom feed"),
    "html-not-rss.xml": file_rejected("not an RSS or Atom feed (no feed or channel element found)"),
    "billion-laughs.xml": file_rejected("malformed feed (SAXParseException", 1),
    "external-entity.xml": file_rejected("malformed feed (SAXParseException", 1),
    "truncated.rss": file_rejected("malformed feed (SAXParseException", 4),
    "empty-feed.rss": read_to_end(0),
    "json.rss": file_rejected("JSON, not an RSS or Atom feed"),
    "entry-without-text.atom": read_to_end(1, "neither title nor text"),
    "binary.rss": file_rejected("binary data, not an RSS or Atom feed"),
    # Text: a digest or not.
    "notes.txt": file_rejected("not a news digest: 3 of the first 5 lines look like notes"),
    "wrapped-prose.txt": file_rejected("not a news digest"),
    "config.txt": file_rejected("not a news digest"),
    "binary.txt": file_rejected("binary data, not a news digest"),
    "latin1-digest.txt": read_to_end(3, "invalid UTF-8 at byte 6"),
    # Compressed: what comes before a cut or a corrupt stretch is kept.
    "gzipped-truncated.jsonl.gz": file_rejected("truncated gzip data: the file ends inside the compressed stream", 2),
    "gzipped-corrupt.csv.gz": file_rejected("corrupt gzip data (BadGzipFile: CRC check failed", 2),
    "gzipped-inner-gzip.jsonl.gz": file_rejected("gzip-compressed data, not JSON Lines"),
    "zstd.jsonl.zst": read_to_end(3),
    "truncated.jsonl.zst": file_rejected("truncated zstd data", 2),
    # JSON documents.
    "good.json": read_to_end(3),
    "newsapi-empty.json": read_to_end(0),
    "newsapi-error.json": file_rejected(
        "no records found: no array of objects with a text or title key (top-level keys: status, code, message)"
    ),
    "newsapi-spool.json": read_to_end(3),
    "truncated.json": file_rejected("malformed JSON after record 1: parse error: premature EOF", 1),
    "not-json.json": file_rejected("not a JSON document or JSON Lines"),
    "scalars.json": read_to_end(
        1, "malformed record: a JSON int", "malformed record: a JSON str", "malformed record: a JSON NoneType"
    ),
    # HTML pages and WARC files: a page without an article is a reject with the reason.
    "good.html": read_to_end(1),
    "script-only.html": read_to_end(0, "not an article: a main text of 2 words"),
    "link-list.html": read_to_end(0, "not an article: the main text reads like a list of links"),
    "not-html.html": file_rejected("not an HTML page"),
    "binary.html": file_rejected("binary data, not an HTML page"),
    "good.warc": read_to_end(
        2, "not an article", "not a page: HTTP status 404", "not an HTML page (content type image/png)"
    ),
    "truncated.warc": (2, ["not an article"], "truncated WARC file: it ends inside record 6"),
    "gzipped-truncated.warc.gz": (2, ["not an article", "not a page: HTTP status 404"], "truncated gzip data"),
    "not-a-warc.warc": file_rejected("not a WARC file"),
}
NOT_PICKED = {"unknown-extension-ignored.dat", "README.md"}
LIBRARY_MADE = {
    name
    for name in EXPECTED
    if name.endswith((".parquet", ".gz", ".zst")) or name.startswith(("gzipped", "parquet-in"))
}

# Made at run time: too big to commit. name -> (bytes, expected as above)
HUGE_TEXT = "Harbour " * 25_000  # 200,000 chars: over Python's csv field limit (131,072) and max_field_chars


def generated() -> dict[str, tuple[bytes, Outcome]]:
    long_line = b'{"id": "long", "title": "' + b"x" * (2 << 20) + b'"}\n'
    return {
        "huge-field.csv": (f'id,title,text\nbig,Huge field,"{HUGE_TEXT}"\nsmall,Small,Row.\n'.encode(), read_to_end(2)),
        "huge-title.jsonl": (json.dumps({"id": "huge", "title": HUGE_TEXT}).encode() + b"\n", read_to_end(1)),
        # Over the (lowered) line limit: rejected without being held, the next line still read.
        "huge-line.jsonl": (
            long_line + b'{"id": "after", "title": "After the long line"}\n',
            read_to_end(1, "line too long"),
        ),
        "no-newlines.jsonl": (b"[" * (3 << 20), read_to_end(0, "line too long")),
        "huge-feed.rss": (b"<rss>" + b" " * 60_000 + b"</rss>", file_rejected("feed too large")),
        # JSON bombs: nesting that would cost the parser quadratic memory, a string over the record limit,
        # a record of many small values over it. Each costs its record at most.
        "json-bomb-deep.json": (
            b"[" + b"[" * 200_000 + b"]" * 200_000 + b', {"title": "After the deep one", "text": "Harbour."}]',
            read_to_end(1, "malformed JSON: nested too deeply"),
        ),
        "json-bomb-string.json": (
            b'[{"title": "' + b"x" * (2 << 20) + b'"}, {"title": "After"}]',
            file_rejected("a JSON value over 1,048,576 bytes without a break"),
        ),
        "json-bomb-wide.json": (
            b'[{"title": "Wide", "tags": [' + b'"a", ' * 300_000 + b'"a"]}, {"title": "After the wide one"}]',
            read_to_end(1, "record too long: over 1,048,576 bytes"),
        ),
        "huge-page.html": (
            b"<html><body>" + b"<p>Harbour news.</p>" * 4000 + b"</body></html>",
            file_rejected("page too large"),
        ),
        # 64 MB of spaces in 64 KB: decompressed as read, a bounded line at a time.
        "gzip-bomb.jsonl.gz": (
            gzip.compress(b" " * (64 << 20), compresslevel=9, mtime=0),
            read_to_end(0, "line too long"),
        ),
    }


@pytest.fixture
def corpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The committed corpus plus the generated big files, with the line and feed limits lowered."""
    monkeypatch.setattr(files, "MAX_LINE_BYTES", 1 << 20)
    monkeypatch.setattr(feeds, "MAX_FEED_BYTES", 50_000)
    monkeypatch.setattr(html, "MAX_PAGE_BYTES", 50_000)
    folder = tmp_path / "inbox"
    shutil.copytree(HOSTILE, folder)
    for name, (data, _) in generated().items():
        (folder / name).write_bytes(data)
    return folder


def by_file(result: IngestResult) -> dict[str, tuple[list[RawRecord], list[Reject], list[FileReject]]]:
    grouped: dict[str, tuple[list[RawRecord], list[Reject], list[FileReject]]] = defaultdict(lambda: ([], [], []))
    for record in result.records:
        grouped[Path(record.file).name][0].append(record)
    for reject in result.rejects:
        grouped[Path(reject.file).name][1].append(reject)
    for file_reject in result.file_rejects:
        grouped[Path(file_reject.file).name][2].append(file_reject)
    return grouped


def test_committed_fixtures_are_current_and_small() -> None:
    built = build()
    assert len([name for name in built if not name.startswith("good")]) >= 30
    for name, data in built.items():
        assert len(data) < 50_000, name
        if name in LIBRARY_MADE:  # their bytes depend on the pyarrow and zlib versions, their faults do not
            assert (HOSTILE / name).exists(), name
            continue
        assert (HOSTILE / name).read_bytes() == data, f"{name} differs: run python -m tests.fixtures.make_hostile"
    assert set(EXPECTED) | NOT_PICKED == {path.name for path in HOSTILE.iterdir()}


def test_every_file_of_the_corpus_ends_as_expected(corpus: Path) -> None:
    result = ingest([str(corpus)], InputConfig())
    expected = EXPECTED | {name: outcome for name, (_, outcome) in generated().items()}
    assert sorted(Path(f).name for f in result.files) == sorted(expected)
    grouped = by_file(result)
    for name, (records, reasons, file_reason) in expected.items():
        got_records, got_rejects, got_file = grouped[name]
        assert len(got_records) == records, (name, got_records)
        assert len(got_rejects) == len(reasons), (name, got_rejects)
        for reject, reason in zip(sorted(got_rejects, key=lambda r: r.line or 0), reasons, strict=True):
            assert reject.reason.startswith(reason), (name, reject.reason)
        if file_reason is None:
            assert not got_file, (name, got_file)
        else:
            (file_reject,) = got_file
            assert file_reject.reason.startswith(file_reason), (name, file_reject.reason)
            assert file_reject.size == (corpus / name).stat().st_size
            assert len(file_reject.sha256) == 64
    assert result.lines_read == len(result.records) + len(result.rejects)


def test_good_records_are_read_whole(corpus: Path) -> None:
    grouped = by_file(ingest([str(corpus)], InputConfig()))
    for fmt in ("jsonl", "csv", "parquet"):
        records = grouped[f"good.{fmt}"][0]
        assert [r.id for r in records] == [f"{fmt}-{n}" for n in range(3)]
        assert all(r.published_at and not r.notes for r in records)
    assert [r.id for r in grouped["good.rss"][0]] == ["harbour-0", "harbour-1", "harbour-2"]
    assert [r.title for r in grouped["corrupt-row-group.parquet"][0]][-1].startswith("Rg report 19")
    digest = grouped["good-digest.txt"][0]
    assert digest[0].title == "City Paper on MSNCouncil approves the new harbour budget after long debate"


def test_big_fields_are_cut_with_a_note(corpus: Path) -> None:
    grouped = by_file(ingest([str(corpus)], InputConfig()))
    big, small = grouped["huge-field.csv"][0]
    assert len(big.text) == 100_000 and big.notes == ["text truncated from 200,000 chars"]
    assert small.id == "small" and not small.notes
    (title,) = grouped["huge-title.jsonl"][0]
    assert len(title.title) == 100_000 and title.notes == ["title truncated from 200,000 chars"]
    (after,) = grouped["huge-line.jsonl"][0]
    (long_line,) = grouped["huge-line.jsonl"][1]
    assert after.id == "after" and long_line.line == 1 and len(long_line.record) <= 2000


def test_hostile_feeds_stay_harmless(corpus: Path) -> None:
    grouped = by_file(ingest([str(corpus)], InputConfig()))
    (laughs,) = grouped["billion-laughs.xml"][0]
    assert len(laughs.title) < 100  # the entity is never expanded
    (leak,) = grouped["external-entity.xml"][0]
    assert "root:" not in leak.title + leak.text  # no external entity is fetched


def test_everything_read_is_storable(corpus: Path) -> None:
    """Every string that reaches the database encodes as UTF-8 (DuckDB refuses lone surrogates)."""
    result = ingest([str(corpus)], InputConfig())
    for record in result.records:
        for value in (record.id, record.title, record.text, record.source, record.url, record.file, *record.notes):
            (value or "").encode("utf-8")
    for reject in result.rejects:
        (reject.reason + reject.record + reject.file).encode("utf-8")
        assert len(reject.record) <= 2000
    for file_reject in result.file_rejects:
        (file_reject.reason + file_reject.file).encode("utf-8")
        assert "\n" not in file_reject.reason


@pytest.mark.usefixtures("fake_model")
def test_the_job_runs_over_the_corpus(corpus: Path, tmp_path: Path) -> None:
    from pipeline.runner import run

    db = tmp_path / "stories.duckdb"
    report = run([str(corpus)], Config(), db=db)
    batch = ingest([str(corpus)], InputConfig())
    assert report.lines_read == batch.lines_read
    with duckdb.connect(str(db), read_only=True) as con:
        stored = {row[0] for row in con.execute("SELECT article_id FROM articles").fetchall()}
    assert {f"{fmt}-{n}" for fmt in ("jsonl", "csv", "parquet") for n in range(3)} <= stored
    assert {"harbour-0", "harbour-1", "harbour-2", "huge", "big"} <= stored


@pytest.mark.slow
def test_the_cli_runs_over_the_corpus(tmp_path: Path) -> None:
    """The real command, real model: the batch ends normally (exit 0) however broken the inputs."""
    folder = tmp_path / "inbox"
    shutil.copytree(HOSTILE, folder)
    db = tmp_path / "stories.duckdb"
    command = [sys.executable, "-m", "pipeline.cli", "run", str(folder), "--db", str(db), "-q"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM articles").fetchone()[0] > 20

"""Property tests for every reader: whatever the bytes, no exception escapes ingest, and nothing is lost.

Invariants checked on every example (`check`): at most one file reject per file, after its other items;
every string storable as UTF-8; fields within their limits. For line formats, records and rejects also
account for every non-blank line, or the file is a file reject. Kept small (tens of examples each,
no deadline) so `make test` stays quick.
"""

from __future__ import annotations

import csv
import io
import json
import random
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from xml.sax.saxutils import escape

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.config import FORMATS, InputConfig
from pipeline.ingest import iter_ingest
from pipeline.ingest.digest import is_chrome
from pipeline.ingest.fields import MAX_ID_CHARS
from pipeline.records import FileReject, RawRecord, Reject
from tests.fixtures.make_hostile import HOSTILE

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
EXTENSIONS = {
    "jsonl": ".jsonl",
    "json": ".json",
    "csv": ".csv",
    "parquet": ".parquet",
    "rss": ".rss",
    "digest": ".txt",
    "html": ".html",
    "warc": ".warc",
}
SMALL = InputConfig(max_field_chars=200)
Item = RawRecord | Reject | FileReject

# Pieces that make random bytes look like each format often enough to get past the first checks.
FRAGMENTS = [
    b"{",
    b"}",
    b"[",
    b"]",
    b'"title"',
    b'"text"',
    b'"id"',
    b":",
    b",",
    b'"',
    b"\\",
    b"\\u",
    b"d800",
    b"\n",
    b"\r",
    b"\r\n",
    b" ",
    b"\x00",
    b"\xff",
    b"\xc3\xa9",
    b"\xef\xbb\xbf",
    b"caf\xe9",
    b"PAR1",
    b"1e999",
    b"99999999999999999999",
    b"null",
    b"true",
    b"id,title,text",
    b"<rss>",
    b"<channel>",
    b"<item>",
    b"</item>",
    b"<title>",
    b"</title>",
    b"&amp;",
    b"&lol;",
    b"<!DOCTYPE x [<!ENTITY lol 'lol'>]>",
    b"<![CDATA[",
    b"Digest more",
    b"12h",
    b"Council approves the harbour budget after a long debate on Monday.",
    b"Harbour opens",
]
fragments = st.lists(st.sampled_from(FRAGMENTS), max_size=60).map(b"".join)
any_bytes = st.one_of(st.binary(max_size=2048), fragments)
good_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)  # any storable text


@contextmanager
def input_file(data: bytes, suffix: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"input{suffix}"
        path.write_bytes(data)
        yield path


def read(data: bytes, fmt: str, config: InputConfig = SMALL, forced: bool = False) -> list[Item]:
    """All items of one file, with the invariants every reader keeps checked."""
    with input_file(data, EXTENSIONS[fmt]) as path:
        items = list(iter_ingest([str(path)], config, fmt if forced else None))
    check(items, config)
    return items


def check(items: list[Item], config: InputConfig) -> None:
    file_rejects = [item for item in items if isinstance(item, FileReject)]
    assert len(file_rejects) <= 1
    if file_rejects:
        reason = file_rejects[0].reason
        assert items[-1] is file_rejects[0] and reason and "\n" not in reason
        reason.encode("utf-8")
    for item in items:
        if isinstance(item, RawRecord):
            assert item.line >= 1 and (item.title.strip() or item.text.strip())
            assert len(item.title) <= config.max_field_chars and len(item.text) <= config.max_field_chars
            assert item.id is None or len(item.id) <= MAX_ID_CHARS
            for value in (item.id, item.title, item.text, item.source, item.url, *item.notes):
                (value or "").encode("utf-8")
        elif isinstance(item, Reject):
            assert item.line is None or item.line >= 1
            (item.reason + item.record).encode("utf-8")
            assert item.reason and len(item.record) <= 2000


def non_blank_lines(data: bytes) -> list[int]:
    """Numbers of the lines a line reader must account for (as `bytes.splitlines`, BOM dropped)."""
    lines = data.removeprefix(b"\xef\xbb\xbf").splitlines()
    return [number for number, line in enumerate(lines, start=1) if line.strip()]


def assert_lines_accounted(items: list[Item], data: bytes) -> None:
    if any(isinstance(item, FileReject) for item in items):
        return
    lines = [item.line for item in items if isinstance(item, RawRecord | Reject)]
    assert lines == non_blank_lines(data)


# Random bytes, for every format.


@FUZZ
@given(data=any_bytes, fmt=st.sampled_from(FORMATS), forced=st.booleans())
def test_random_bytes_never_raise(data: bytes, fmt: str, forced: bool) -> None:
    items = read(data, fmt, forced=forced)
    if fmt == "jsonl":
        assert_lines_accounted(items, data)


@FUZZ
@given(data=fragments)
def test_jsonl_accounts_for_every_line(data: bytes) -> None:
    assert_lines_accounted(read(data, "jsonl"), data)


# Truncated and damaged copies of the good files.

GOOD = {fmt: (HOSTILE / f"good{suffix}").read_bytes() for fmt, suffix in EXTENSIONS.items() if fmt != "digest"}
GOOD["digest"] = (HOSTILE / "good-digest.txt").read_bytes()


@FUZZ
@given(
    fmt=st.sampled_from(FORMATS),
    cut=st.floats(0, 1),
    flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), max_size=4),
)
def test_truncated_or_damaged_good_files_never_raise(fmt: str, cut: float, flips: list[tuple[float, int]]) -> None:
    data = bytearray(GOOD[fmt][: int(len(GOOD[fmt]) * cut)])
    for where, value in flips:
        if data:
            data[int(len(data) * where)] = value
    items = read(bytes(data), fmt)
    if fmt == "jsonl":
        assert_lines_accounted(items, bytes(data))
    if fmt == "parquet" and len(data) < len(GOOD[fmt]):
        assert isinstance(items[-1], FileReject)  # a cut Parquet file is never taken for a whole one


# Mixed encodings, line by line.

ENCODINGS = ["utf-8", "latin-1", "cp1252", "utf-16-le", "utf-8-sig"]


@FUZZ
@given(st.lists(st.tuples(good_text, st.sampled_from(ENCODINGS)), min_size=1, max_size=12))
def test_mixed_encodings_jsonl(lines: list[tuple[str, str]]) -> None:
    data = b"".join(
        json.dumps({"title": text or "x"}, ensure_ascii=False).encode(encoding, "replace") + b"\n"
        for text, encoding in lines
    )
    items = read(data, "jsonl")
    assert_lines_accounted(items, data)
    for (text, encoding), item in zip(lines, items, strict=False):
        if encoding == "utf-8" and isinstance(item, RawRecord):
            assert item.title == (text or "x")


@FUZZ
@given(st.lists(st.tuples(good_text, st.sampled_from(ENCODINGS)), min_size=1, max_size=12))
def test_mixed_encodings_csv_and_digest(lines: list[tuple[str, str]]) -> None:
    body = b"".join(f"{n},{text}\n".encode(encoding, "replace") for n, (text, encoding) in enumerate(lines))
    read(b"id,title\n" + body, "csv")
    read(body, "digest", forced=True)


# Huge fields and deep nesting.


@FUZZ
@given(
    length=st.integers(0, 3000),
    field=st.sampled_from(["title", "text", "source", "url", "id"]),
    fmt=st.sampled_from(["jsonl", "csv"]),
)
def test_huge_fields_are_cut_or_rejected(length: int, field: str, fmt: str) -> None:
    row = {"id": "r", "title": "Harbour opens", "text": "Ships arrive.", field: "y" * length}
    if fmt == "jsonl":
        data = json.dumps(row).encode() + b"\n"
    else:
        data = (
            "id,title,text,source,url\n"
            + ",".join(row.get(k, "") for k in ("id", "title", "text", "source", "url"))
            + "\n"
        ).encode()
    (item,) = read(data, fmt)
    if field == "id" and length > MAX_ID_CHARS:
        assert isinstance(item, Reject) and item.reason.startswith("id too long")
    elif length > SMALL.max_field_chars and field != "id":
        assert isinstance(item, RawRecord)
        note = f"url dropped: {length:,} chars" if field == "url" else f"{field} truncated from {length:,} chars"
        assert note in item.notes
    elif isinstance(item, RawRecord):
        assert not item.notes


@FUZZ
@given(depth=st.integers(1, 30_000), opener=st.sampled_from(["[", '{"a":']), closed=st.booleans())
def test_deep_nesting_is_a_reject_not_a_crash(depth: int, opener: str, closed: bool) -> None:
    closer = "]" if opener == "[" else "}"
    nested = opener * depth + ("1" + closer * depth if closed else "")
    data = f'{{"id": "deep", "title": {nested}}}\n{{"id": "next", "title": "After"}}\n'.encode()
    items = read(data, "jsonl")
    assert_lines_accounted(items, data)
    first, second = items
    assert isinstance(first, Reject) and isinstance(second, RawRecord)
    if closed and depth > 2000:
        assert first.reason == "malformed JSON: nested too deeply"
    else:
        assert first.reason.startswith(("malformed JSON", "wrong field type"))


# Well-formed files of random content: exact accounting.

cells = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=30)  # text, no control bytes


@FUZZ
@given(st.lists(st.tuples(cells, cells, cells), max_size=15), st.booleans())
def test_csv_rows_are_each_a_record_or_a_reject(rows: list[tuple[str, str, str]], crlf: bool) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n" if crlf else "\n")
    writer.writerow(["id", "title", "text"])
    writer.writerows(rows)
    items = read(buffer.getvalue().encode(), "csv")
    assert not any(isinstance(item, FileReject) for item in items)
    kept = [row for row in rows if any(row)]
    assert len(items) == len(kept)
    for row, item in zip(kept, items, strict=True):
        if isinstance(item, RawRecord):
            assert (item.title, item.text) == (row[1], row[2])
        else:
            assert item.reason in ("neither title nor text",) or item.reason.startswith("id too long")


PARQUET_VALUES = {
    "string": st.one_of(st.none(), good_text),
    "int64": st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)),
    "float64": st.one_of(st.none(), st.floats(allow_nan=True)),
    "bool": st.one_of(st.none(), st.booleans()),
    "binary": st.one_of(st.none(), st.binary(max_size=20)),
    "list<string>": st.one_of(st.none(), st.lists(good_text, max_size=3)),
    "timestamp[s]": st.one_of(st.none(), st.datetimes()),
}


@FUZZ
@given(st.data())
def test_parquet_of_any_column_types(data: st.DataObject) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = data.draw(st.integers(0, 12))
    columns = {}
    for name in data.draw(st.lists(st.sampled_from(["id", "title", "text", "published_at", "other"]), unique=True)):
        kind = data.draw(st.sampled_from(sorted(PARQUET_VALUES)))
        values = data.draw(st.lists(PARQUET_VALUES[kind], min_size=rows, max_size=rows))
        columns[name] = pa.array(values, type=pa.list_(pa.string()) if kind == "list<string>" else _arrow_type(kind))
    buffer = io.BytesIO()
    pq.write_table(pa.table(columns) if columns else pa.table({"other": pa.array([], pa.int64())}), buffer)
    items = read(buffer.getvalue(), "parquet")
    if "title" in columns or "text" in columns:
        assert len(items) == rows and not any(isinstance(item, FileReject) for item in items)
    else:
        (item,) = items
        assert isinstance(item, FileReject) and item.reason.startswith("no title or text column")


def _arrow_type(kind: str) -> object:
    import pyarrow as pa

    return {"timestamp[s]": pa.timestamp("s"), "bool": pa.bool_()}.get(kind, kind)


@FUZZ
@given(st.lists(st.tuples(good_text, good_text), max_size=8), st.booleans())
def test_feed_entries_are_each_a_record_or_a_reject(entries: list[tuple[str, str]], atom: bool) -> None:
    clean = [("".join(c for c in t if c.isprintable()), "".join(c for c in s if c.isprintable())) for t, s in entries]
    if atom:
        body = "".join(f"<entry><title>{escape(t)}</title><summary>{escape(s)}</summary></entry>" for t, s in clean)
        xml = f'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>F</title>{body}</feed>'
    else:
        body = "".join(
            f"<item><title>{escape(t)}</title><description>{escape(s)}</description></item>" for t, s in clean
        )
        xml = (
            f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>F</title>{body}</channel></rss>'
        )
    items = read(xml.encode(), "rss")
    if not any(isinstance(item, FileReject) for item in items):
        assert len(items) == len(entries)


@FUZZ
@given(
    st.lists(
        st.one_of(
            st.sampled_from(["Digest more", "12h", "See more", "", "   "]),
            st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=60),
            st.binary(min_size=1, max_size=30).filter(lambda b: b"\n" not in b and b"\r" not in b),
        ),
        max_size=20,
    ),
    st.booleans(),
)
def test_digest_lines_are_used_once_or_rejected(lines: list[str | bytes], forced: bool) -> None:
    data = b"\n".join(line if isinstance(line, bytes) else line.encode() for line in lines) + b"\n"
    items = read(data, "digest", forced=forced)
    if any(isinstance(item, FileReject) for item in items):
        assert not forced or not items[-1].reason.startswith("not a news digest:")  # type: ignore[union-attr]
        return
    bad, content = set(), []
    for number, line in enumerate(data.removeprefix(b"\xef\xbb\xbf").splitlines(), start=1):
        try:
            text = line.decode("utf-8").strip()
        except UnicodeDecodeError:
            bad.add(number)
            continue
        if text and not is_chrome(text):
            content.append(number)
    assert {item.line for item in items if isinstance(item, Reject)} == bad
    used = sum(2 if item.title and item.text else 1 for item in items if isinstance(item, RawRecord))
    assert used <= len(content) <= used + 3  # at most the page heading (lines before the first chrome) is dropped


def test_fuzz_corpus_is_reproducible() -> None:
    """A fixed-seed sweep over the hostile corpus with random cuts: the same check, no hypothesis."""
    rng = random.Random(11)
    for path in sorted(HOSTILE.iterdir()):
        fmt = {suffix: fmt for fmt, suffix in EXTENSIONS.items()}.get(path.suffix, "rss")
        data = path.read_bytes()
        for _ in range(3):
            read(data[: rng.randint(0, len(data))], fmt)

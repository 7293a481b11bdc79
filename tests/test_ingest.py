import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import pipeline.ingest as ingest_module
from pipeline.config import FieldMap, InputConfig
from pipeline.errors import InputError
from pipeline.ingest import file_sha256, ingest, iter_ingest, looks_like_digest, resolve_inputs
from pipeline.ingest.digest import read_digest
from pipeline.ingest.fields import parse_datetime
from pipeline.records import FileReject
from tests.conftest import SAMPLE

BAD_LINES = [
    (b'{"id": "ok-1", "title": "Fed holds rates", "text": "", "published_at": "2014-03-10T16:52:50Z"}', None),
    (b'{"id": "bad-json", "title": ', "malformed JSON"),
    (b'{"id": "bad-utf8", "title": "caf\xe9"}', "invalid UTF-8"),
    (b'{"id": "bad-type", "title": 42}', "wrong field type"),
    (b'{"id": "empty", "title": "", "text": null}', "neither title nor text"),
    (b'["not", "an", "object"]', "malformed record"),
    (b'{"id": "bad-date", "title": "Storm hits coast", "published_at": "yesterday-ish"}', None),
]


def write_lines(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_jsonl_rejects_each_bad_kind_with_a_reason(tmp_path: Path) -> None:
    source = write_lines(tmp_path / "in.jsonl", [line for line, _ in BAD_LINES])
    result = ingest([str(source)], InputConfig())
    assert [r.id for r in result.records] == ["ok-1", "bad-date"]
    reasons = {reject.line: reject.reason for reject in result.rejects}
    for number, (_, expected) in enumerate(BAD_LINES, start=1):
        if expected:
            assert reasons[number].startswith(expected), (number, reasons)
    assert result.lines_read == len(BAD_LINES)
    undated = result.records[1]
    assert undated.published_at is None and undated.notes[0].startswith("date dropped")


def test_field_names_are_remappable(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"guid": "x1", "headline": "Quake hits Chile", "body": "A strong quake."}) + "\n")
    config = InputConfig(fields=FieldMap(id="guid", title="headline", text="body"))
    (only,) = ingest([str(source)], config).records
    assert (only.id, only.title, only.text) == ("x1", "Quake hits Chile", "A strong quake.")


def test_csv_and_rss(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text('id,title,text\n1,"Quake, then tsunami",body\n2,,\n')
    (tmp_path / "b.rss").write_text(
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Wire</title>'
        "<item><title>Rates held</title><link>http://x/1</link><description>The Fed held.</description>"
        "<pubDate>Mon, 10 Mar 2014 16:52:50 GMT</pubDate></item></channel></rss>"
    )
    result = ingest([str(tmp_path)], InputConfig())
    titles = sorted(r.title for r in result.records)
    assert titles == ["Quake, then tsunami", "Rates held"]
    assert [r.reason for r in result.rejects] == ["neither title nor text"]
    feed_item = next(r for r in result.records if r.title == "Rates held")
    assert feed_item.source == "Wire" and feed_item.published_at.isoformat() == "2014-03-10T16:52:50"


def test_missing_path_and_unknown_extension(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="input not found"):
        ingest([str(tmp_path / "nope.jsonl")], InputConfig())
    (tmp_path / "x.bin").write_text("data")
    (tmp_path / "a.jsonl").write_text('{"id": "a", "title": "Quake hits Chile"}\n')
    named = ingest([str(tmp_path / "x.bin"), str(tmp_path / "a.jsonl")], InputConfig())
    assert [r.id for r in named.records] == ["a"]
    (reject,) = named.file_rejects
    assert reject.file == str(tmp_path / "x.bin") and "use --format" in reject.reason and reject.size == 4
    assert reject.sha256 == hashlib.sha256(b"data").hexdigest()
    scanned = ingest([str(tmp_path)], InputConfig())  # in a folder, an unknown extension is not picked
    assert scanned.files == [str(tmp_path / "a.jsonl")] and not scanned.file_rejects
    with pytest.raises(InputError, match="unknown format"):
        ingest([str(tmp_path)], InputConfig(), fmt="xml")


def test_digest_items_and_chrome() -> None:
    records = [r for r in read_digest(SAMPLE) if not hasattr(r, "reason")]
    assert len(records) == 9
    everything = " ".join(r.title + " " + r.text for r in records)
    assert "Digest more" not in everything and "Ukraine, Kyiv and NATO" not in everything.replace("\n", " ")[:30]
    first = records[0]
    assert first.title.endswith("Mark Rutte calls on NATO to increase U.S. arms purchases for Ukraine")
    assert first.text.startswith("Addressing the defense ministers")


@given(st.datetimes(timezones=st.none()))
def test_iso_dates_round_trip(moment) -> None:  # noqa: ANN001
    assert parse_datetime(moment.isoformat()) == moment


def test_unparsable_date_raises() -> None:
    with pytest.raises(ValueError):
        parse_datetime("not a date")


# File-level isolation, skipping known bad files, streaming (issue 11).


def test_file_sha256_streams_in_chunks(tmp_path: Path) -> None:
    data = bytes(range(256)) * 9000  # over two 1 MiB chunks
    (tmp_path / "big.bin").write_bytes(data)
    assert file_sha256(tmp_path / "big.bin") == hashlib.sha256(data).hexdigest()


def test_a_bad_file_is_a_file_reject_and_the_batch_goes_on(tmp_path: Path) -> None:
    (tmp_path / "a.parquet").write_bytes(b"PAR1 this is no parquet")
    write_lines(tmp_path / "b.jsonl", [BAD_LINES[0][0]])
    result = ingest([str(tmp_path)], InputConfig())
    assert [r.id for r in result.records] == ["ok-1"]
    (reject,) = result.file_rejects
    assert reject.file.endswith("a.parquet") and reject.reason.startswith("truncated Parquet file")
    assert result.files == [str(tmp_path / "a.parquet"), str(tmp_path / "b.jsonl")]


def test_skip_leaves_known_bad_unchanged_files_unread(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("headline,body\nQuake,A quake.\n")
    write_lines(tmp_path / "good.jsonl", [BAD_LINES[0][0]])
    first = ingest([str(tmp_path)], InputConfig())
    (reject,) = first.file_rejects
    assert "no title or text column (found: headline, body)" in reject.reason
    known = {reject.file: reject.sha256}
    asked: list[tuple[Path, int]] = []

    def skip(path: Path, size: int) -> str | None:
        asked.append((path, size))
        return known.get(str(path))

    second = ingest([str(tmp_path)], InputConfig(), skip=skip)
    assert second.skipped_files == [str(bad)] and not second.file_rejects
    assert second.files == [str(tmp_path / "good.jsonl")] and len(second.records) == 1
    assert asked[0] == (bad, bad.stat().st_size)
    bad.write_text("title,body\nQuake,A quake.\n")  # fixed: a new hash, read again
    third = ingest([str(tmp_path)], InputConfig(), skip=skip)
    assert not third.skipped_files and [r.title for r in third.records] == ["Quake", "Fed holds rates"]


def test_iter_ingest_streams_in_file_order_and_resolves_at_once(tmp_path: Path) -> None:
    (tmp_path / "b.csv").write_text("id,title\nb1,Second file\n")
    write_lines(tmp_path / "a.jsonl", [BAD_LINES[0][0], BAD_LINES[1][0]])
    (tmp_path / "c.txt").write_text("- a note\n- another\n")
    stream = iter_ingest([str(tmp_path)], InputConfig())
    assert (
        [p.name for p in stream.paths]
        == ["a.jsonl", "b.csv", "c.txt"]
        == [p.name for p in resolve_inputs([str(tmp_path)])]
    )
    items = list(stream)
    assert [type(i).__name__ for i in items] == ["RawRecord", "Reject", "RawRecord", "FileReject"]
    assert stream.files == [str(tmp_path / n) for n in ("a.jsonl", "b.csv", "c.txt")]
    with pytest.raises(InputError, match="input not found"):
        iter_ingest([str(tmp_path / "missing.jsonl")], InputConfig())  # before any item is asked for


def test_read_time_os_errors_are_file_rejects(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gone, locked = tmp_path / "gone.jsonl", tmp_path / "locked.jsonl"
    for path in (gone, locked):
        write_lines(path, [BAD_LINES[0][0]])
    stream = iter_ingest([str(gone), str(locked)], InputConfig())
    gone.unlink()  # deleted between listing and reading
    real_read = ingest_module.read_file

    def read_file(path: Path, *args: object, **kwargs: object) -> object:
        if path == locked:
            raise PermissionError(13, "Permission denied")
        return real_read(path, *args, **kwargs)

    monkeypatch.setattr(ingest_module, "read_file", read_file)
    first, second = list(stream)
    assert isinstance(first, FileReject) and first.reason == "cannot read: No such file or directory"
    assert isinstance(second, FileReject) and second.reason == "cannot read: Permission denied"
    assert second.sha256 == file_sha256(locked)


def test_a_file_failing_midway_keeps_what_was_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_lines(tmp_path / "in.jsonl", [BAD_LINES[0][0]] * 3)
    real_read = ingest_module.read_file

    def read_file(*args: object, **kwargs: object) -> Iterator[object]:
        items = real_read(*args, **kwargs)
        yield next(items)
        with path.open("ab") as handle:  # a writer still appending to the file
            handle.write(b"more\n")
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(ingest_module, "read_file", read_file)
    result = ingest([str(path)], InputConfig())
    assert len(result.records) == 1
    (reject,) = result.file_rejects
    assert reject.reason.startswith("reader failed (RuntimeError: disk on fire)")
    assert "1 records and rejects were read from it and are kept" in reject.reason
    assert "changed while it was read" in reject.reason and reject.sha256 == ""  # never remembered as known bad


def test_long_fields_are_cut_with_a_note_and_long_ids_rejected(tmp_path: Path) -> None:
    rows = [
        {"id": "long", "title": "T" * 150, "text": "x" * 1000, "url": "http://" + "u" * 200},
        {"id": "i" * 1001, "title": "An id too long"},
    ]
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in rows))
    result = ingest([str(source)], InputConfig(max_field_chars=100))
    (record,) = result.records
    assert (len(record.title), len(record.text), record.url) == (100, 100, None)
    assert record.notes == [
        "title truncated from 150 chars",
        "text truncated from 1,000 chars",
        "url dropped: 207 chars",
    ]
    assert [r.reason for r in result.rejects] == ["id too long: 1,001 chars (limit 1,000)"]


def test_txt_is_a_digest_only_when_it_looks_like_one_or_is_forced(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("Shopping\n- milk\n- bread\ncall Anna about the budget\n")
    result = ingest([str(notes), str(SAMPLE)], InputConfig())
    assert len(result.records) == 9
    (reject,) = result.file_rejects
    assert reject.reason.startswith("not a news digest:") and reject.reason.endswith("use --format digest to force")
    forced = ingest([str(notes)], InputConfig(), fmt="digest")
    assert not forced.file_rejects and forced.records


def test_looks_like_digest_reads_layout_not_words() -> None:
    assert looks_like_digest(SAMPLE.read_text())
    other_words = (
        "Harbour\n"
        "Council approves the new harbour budget after long debate\n"
        "The council approved a budget of two million for the harbour on Monday, ending months of debate.\n"
        "Dock workers welcomed the decision and said repairs to the old pier could start this summer.\n"
    )
    assert looks_like_digest(other_words)
    for text in (
        "",
        "- milk\n- bread\n- call Anna\n",
        "# Title\n\nSome *markdown* here.\n\n## More\n",
        "[server]\nhost = example.com\nport = 8080\n",
        '{"id": 1, "title": "json"}\n{"id": 2}\n',
        "The committee met on Tuesday to discuss the proposal that had been\ncirculated the week before, and after a\n"
        "long discussion of the costs the members agreed\nto postpone the decision until later.\n",
        "2024-05-01 10:00:00 INFO started\n2024-05-01 10:00:01 INFO loading\n2024-05-01 10:00:02 WARN slow\n",
    ):
        assert not looks_like_digest(text), text

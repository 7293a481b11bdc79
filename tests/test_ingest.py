import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.config import FieldMap, InputConfig
from pipeline.errors import InputError
from pipeline.ingest import ingest
from pipeline.ingest.digest import read_digest
from pipeline.ingest.fields import parse_datetime
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
    with pytest.raises(InputError, match="use --format"):
        ingest([str(tmp_path / "x.bin")], InputConfig())


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

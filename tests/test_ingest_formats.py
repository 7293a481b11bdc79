"""News as it arrives in the wild (issue 21): compressed files, JSON documents, nested fields, HTML pages and WARC.

The HTML pages are real (tests/fixtures/html, with their source and licence); each extraction is checked
against what the page itself says. The WARC files are written here from them, with warcio.
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import sys
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.cli import main
from pipeline.config import Config, FieldMap, InputConfig, load_config
from pipeline.errors import ConfigError, InputError
from pipeline.ingest import ingest, iter_ingest, resolve_inputs
from pipeline.records import FileReject, RawRecord, Reject
from tests.fixtures.make_hostile import good_rows, jsonl, newsapi_response, zstd_frames
from tests.test_fuzz_readers import input_file

PAGES = Path(__file__).resolve().parent / "fixtures" / "html"
# What each page says (see tests/fixtures/html/README.md): title, publication time as extracted (UTC; midnight
# where htmldate finds the day only), canonical URL.
REAL_PAGES = {
    "salon.com.emissions.html": (
        "Despite everything, U.S. emissions dipped in 2019",
        datetime(2020, 1, 10),
        "https://www.salon.com/2020/01/10/despite-everything-u-s-emissions-dipped-in-2019_partner/",
    ),
    "dw.com.colonial.html": (
        "Berlin confronts Germany's colonial past with new initiative | DW | 19.01.2020",
        datetime(2020, 1, 19),
        "https://www.dw.com/en/berlin-confronts-germanys-colonial-past-with-new-initiative/a-52060881",
    ),
    "github.blog.spiceland.html": (
        "Leader spotlight: Erin Spiceland",
        datetime(2019, 3, 29),
        "https://github.blog/2019-03-29-leader-spotlight-erin-spiceland/",
    ),
    "futurezone.at.lyft.html": (
        "Uber-Konkurrent Lyft startet mit Waymo-Robotertaxis in USA",
        datetime(2019, 5, 8, 5, 30, 23),
        "https://futurezone.at/digital-life/uber-konkurrent-lyft-startet-mit-waymo-robotertaxis-in-usa/400487461",
    ),
    "blog.python.org.html": (
        "Python 3.6.0 is now available!",
        datetime(2016, 12, 23, 10, 11),
        "http://blog.python.org/2016/12/python-360-is-now-available.html",
    ),
}


def items_of(path: Path, config: InputConfig | None = None, fmt: str | None = None) -> list[object]:
    return list(iter_ingest([str(path)], config or InputConfig(), fmt))


def only(kind: type, items: list[object]) -> list:
    return [item for item in items if isinstance(item, kind)]


# Compressed inputs.

COMPRESSORS = {
    "gz": lambda data: gzip.compress(data, mtime=0),
    "zst": lambda data: zstd_frames(data),
    "bz2": bz2.compress,
    "xz": lzma.compress,
}


@pytest.mark.parametrize("suffix", sorted(COMPRESSORS))
def test_compressed_files_read_as_the_plain_ones(tmp_path: Path, suffix: str) -> None:
    plain = jsonl(*good_rows("plain"))
    (tmp_path / "news.jsonl").write_bytes(plain)
    (tmp_path / f"news.jsonl.{suffix}").write_bytes(COMPRESSORS[suffix](plain))
    expected = [(r.id, r.title, r.published_at) for r in ingest([str(tmp_path / "news.jsonl")], InputConfig()).records]
    result = ingest([str(tmp_path / f"news.jsonl.{suffix}")], InputConfig())
    assert [(r.id, r.title, r.published_at) for r in result.records] == expected
    assert not result.rejects and not result.file_rejects


def test_the_format_of_a_compressed_file_comes_from_its_inner_name_or_its_content(tmp_path: Path) -> None:
    (tmp_path / "spool.gz").write_bytes(gzip.compress(jsonl(*good_rows("sniffed"))))
    (tmp_path / "feed.gz").write_bytes(
        gzip.compress((Path(__file__).parent / "fixtures/hostile/good.rss").read_bytes())
    )
    (tmp_path / "page.gz").write_bytes(gzip.compress((PAGES / "salon.com.emissions.html").read_bytes()))
    (tmp_path / "notes.gz").write_bytes(gzip.compress(b"just some words\n"))
    assert [r.id for r in ingest([str(tmp_path / "spool.gz")], InputConfig()).records] == [
        f"sniffed-{n}" for n in range(3)
    ]
    assert len(ingest([str(tmp_path / "feed.gz")], InputConfig()).records) == 3
    (page,) = ingest([str(tmp_path / "page.gz")], InputConfig()).records
    assert page.title == REAL_PAGES["salon.com.emissions.html"][0]
    (unknown,) = ingest([str(tmp_path / "notes.gz")], InputConfig()).file_rejects
    assert (
        unknown.reason.startswith("cannot tell the format of the decompressed content") and "--format" in unknown.reason
    )


def test_folders_pick_compressed_files_by_their_inner_extension(tmp_path: Path) -> None:
    for name in ("a.jsonl.gz", "b.warc.gz", "c.csv.zst", "d.gz", "e.tar.gz"):
        (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in resolve_inputs([str(tmp_path)])] == ["a.jsonl.gz", "b.warc.gz", "c.csv.zst"]


def test_a_compressed_parquet_file_is_refused_with_the_reason(tmp_path: Path) -> None:
    (tmp_path / "t.parquet.gz").write_bytes(
        gzip.compress((Path(__file__).parent / "fixtures/hostile/good.parquet").read_bytes())
    )
    (reject,) = ingest([str(tmp_path / "t.parquet.gz")], InputConfig()).file_rejects
    assert reject.reason.startswith("gzip-compressed Parquet; decompress it first")


def test_text_that_starts_like_a_compressor_is_still_text(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_bytes(b"BZh,title\nx,Harbour opens\n")  # bzip2's magic, not its block mark
    (record,) = ingest([str(tmp_path / "a.csv")], InputConfig(fields=FieldMap(id="BZh"))).records
    assert (record.id, record.title) == ("x", "Harbour opens")


# JSON documents and nested fields: the four cases of the issue.


def test_a_news_api_response_needs_no_config(tmp_path: Path) -> None:
    source = tmp_path / "response.json"
    source.write_text(json.dumps(newsapi_response(2)))
    result = ingest([str(source)], InputConfig())
    assert not result.rejects and not result.file_rejects and not result.warnings
    first, second = result.records
    assert first.title == "Harbour berth 0 reopens to cargo ships" and first.source == "Harbour Times"
    assert first.text == (
        "Berth 0 of the harbour reopened on Monday.\n\nThe harbour reopened berth 0 to cargo ships on Monday after repairs…"
    )  # description and content, without NewsAPI's "[+1234 chars]"
    assert (first.published_at, first.url, first.line) == (
        datetime(2024, 5, 1, 8),
        "https://harbour.example/berth-0",
        1,
    )
    assert second.line == 2


def test_news_api_articles_as_json_lines_with_one_line_of_config(tmp_path: Path) -> None:
    articles = newsapi_response(2)["articles"]
    source = tmp_path / "articles.jsonl"
    source.write_text("".join(json.dumps(article) + "\n" for article in articles))
    found = ingest([str(source)], InputConfig())  # auto: the shape is NewsAPI's
    configured = ingest([str(source)], InputConfig(preset="newsapi"))
    for result in (found, configured):
        assert [(r.source, r.published_at) for r in result.records] == [
            ("Harbour Times", datetime(2024, 5, 1, 8)),
            ("Harbour Times", datetime(2024, 5, 2, 8)),
        ]
        assert result.records[0].text.startswith("Berth 0 of the harbour reopened on Monday.\n\n")
    off = ingest([str(source)], InputConfig(preset="none"))
    assert all(r.reason.startswith("wrong field type: source is dict") for r in off.rejects)
    assert "map a nested path such as source.name in [input.fields]" in off.rejects[0].reason


def test_nested_paths_and_list_indexes(tmp_path: Path) -> None:
    row = {
        "meta": {"id": 7, "links": [{"href": "https://a.example/1"}]},
        "headline": {"main": "Quake hits Chile"},
        "body": "A strong quake.",
        "source": {"name": "Wire"},
        "when": {"published": "2024-03-10T16:52:50Z"},
        "a.b": "a key with a dot, taken as spelled",
    }
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps(row) + "\n")
    fields = FieldMap(
        id="meta.id", title="headline.main", text="body", source="source.name", url="meta.links.0.href",
        published_at="when.published",
    )  # fmt: skip
    (record,) = ingest([str(source)], InputConfig(fields=fields)).records
    assert (record.id, record.title, record.source, record.url) == (
        "7",
        "Quake hits Chile",
        "Wire",
        "https://a.example/1",
    )
    assert record.published_at == datetime(2024, 3, 10, 16, 52, 50)
    (dotted,) = ingest([str(source)], InputConfig(fields=FieldMap(title="a.b", source="source.name"))).records
    assert dotted.title == "a key with a dot, taken as spelled"
    joined = InputConfig(fields=FieldMap(title="headline.main", text="body+a.b", source="source.name"))
    assert ingest([str(source)], joined).records[0].text == "A strong quake.\n\na key with a dot, taken as spelled"
    (wrong,) = ingest([str(source)], InputConfig(fields=FieldMap(title="headline.main", text="body+meta"))).rejects
    assert wrong.reason.startswith("wrong field type: text is dict")


def test_a_path_that_never_matches_is_a_warning_naming_the_keys_found(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(
        "".join(json.dumps({"title": f"T{n}", "source": {"id": None, "nom": "Wire"}}) + "\n" for n in range(3))
    )
    result = ingest([str(source)], InputConfig(fields=FieldMap(source="source.name", url="link")))
    assert len(result.records) == 3 and all(r.source is None for r in result.records)
    assert [w.message for w in result.warnings] == [
        "field source = 'source.name' matched none of 3 records (keys found under 'source': id, nom)",
        "field url = 'link' matched none of 3 records (keys found: title, source)",
    ]
    assert result.warnings[0].file == str(source)
    matched_once = tmp_path / "once.jsonl"
    matched_once.write_text(
        json.dumps({"title": "T", "link": "https://a.example", "published_at": None})
        + "\n"
        + json.dumps({"title": "U"})
        + "\n"
    )
    assert not ingest([str(matched_once)], InputConfig(fields=FieldMap(url="link"))).warnings


@pytest.mark.usefixtures("fake_model")
def test_a_run_that_stops_part_way_through_a_big_file_still_warns(tmp_path: Path) -> None:
    from pipeline.config import RunConfig
    from pipeline.runner import run

    source = tmp_path / "big.jsonl"
    source.write_text(
        "".join(json.dumps({"id": f"n{n}", "title": f"Report {n}", "src": "Wire"}) + "\n" for n in range(1500))
    )
    config = Config(run=RunConfig(max_items=5), input=InputConfig(fields=FieldMap(source="outlet")))
    report = run([str(source)], config, db=tmp_path / "db.duckdb")
    assert report.waiting and report.articles_new == 5
    assert [w.message for w in report.warnings] == [
        "field source = 'outlet' matched none of the first 1,000 records (keys found: id, title, src)"
    ]
    whole = ingest([str(source)], InputConfig(fields=FieldMap(source="outlet")))
    assert len(whole.warnings) == 1  # said once, after the first rows, not again at the end


@pytest.mark.parametrize(
    ("document", "records_path"),
    [
        ({"response": {"docs": [{"title": "Harbour opens"}, {"title": "Pier repaired"}]}}, ""),
        ({"facets": [{"name": "x"}], "data": [{"text": "Harbour opens"}, {"text": "Pier repaired"}]}, ""),
        ({"items": [{"headline": "Harbour opens"}, {"headline": "Pier repaired"}]}, "items"),
        ([{"title": "Harbour opens"}, {"title": "Pier repaired"}], ""),
    ],
)
def test_records_are_found_in_a_document_or_named(tmp_path: Path, document: object, records_path: str) -> None:
    source = tmp_path / "doc.json"
    source.write_text(json.dumps(document, indent=2))
    fields = FieldMap(title="headline") if records_path else FieldMap()
    result = ingest([str(source)], InputConfig(fields=fields, records_path=records_path))
    assert [r.title or r.text for r in result.records] == ["Harbour opens", "Pier repaired"]
    assert [r.line for r in result.records] == [1, 2]


def test_a_json_file_of_lines_is_read_as_json_lines(tmp_path: Path) -> None:
    source = tmp_path / "lines.json"
    source.write_bytes(jsonl(*good_rows("lines", 2)) + b"not json\n")
    items = items_of(source)
    assert [type(i).__name__ for i in items] == ["RawRecord", "RawRecord", "Reject"]
    assert items[2].line == 3 and items[2].reason.startswith("malformed JSON")  # type: ignore[attr-defined]


def test_a_document_that_is_one_record(tmp_path: Path) -> None:
    source = tmp_path / "one.json"
    source.write_text(json.dumps({"id": "solo", "title": "Harbour opens", "tags": [{"name": "port"}]}, indent=2))
    (record,) = ingest([str(source)], InputConfig()).records
    assert record.id == "solo"


def test_a_records_path_that_is_not_there_names_what_is(tmp_path: Path) -> None:
    source = tmp_path / "response.json"
    source.write_text(json.dumps(newsapi_response(1)))
    (reject,) = ingest([str(source)], InputConfig(records_path="data.items")).file_rejects
    assert reject.reason == (
        "no records at 'data.items' (top-level keys: status, totalResults, articles); check --records-path"
    )
    with pytest.raises(ConfigError, match="input.records_path"):
        Config().with_input("articles..items")


def test_parquet_struct_columns_take_nested_paths(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"title": ["Harbour opens"], "source": [{"id": "w", "name": "Wire"}]})
    pq.write_table(table, tmp_path / "t.parquet")
    (record,) = ingest([str(tmp_path / "t.parquet")], InputConfig(fields=FieldMap(source="source.name"))).records
    assert record.source == "Wire"


# Integers within 64 bits: yajl, the streaming parser, stops the file at a longer one (with that reason).
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63) + 1, 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(["title", "text", "id", "x"]), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(JSON_VALUES, max_size=8), st.booleans())
def test_any_json_array_gives_a_record_or_a_reject_per_item(values: list[object], pretty: bool) -> None:
    data = json.dumps(values, indent=2 if pretty else None).encode()
    with input_file(data, ".json") as path:
        items = items_of(path)
    assert not only(FileReject, items)
    assert len(only(RawRecord, items) + only(Reject, items)) == len(values)


# HTML pages and WARC files.


@pytest.mark.parametrize("name", sorted(REAL_PAGES))
def test_real_pages_give_the_title_and_date_they_state(name: str) -> None:
    title, published, url = REAL_PAGES[name]
    (record,) = ingest([str(PAGES / name)], InputConfig()).records
    assert (record.title, record.published_at, record.url) == (title, published, url)
    assert record.source and len(record.text.split()) > 100
    assert record.text.split("\n", 1)[0] != title  # the headline is not repeated as the body's first line


def write_warc(path: Path, pages: dict[str, bytes], gzipped: bool) -> None:
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    with path.open("wb") as out:
        writer = WARCWriter(out, gzip=gzipped)
        writer.write_record(writer.create_warcinfo_record(path.name, {"software": "storyclust tests"}))
        for url, (status, content_type, body) in pages.items():
            headers = StatusAndHeaders(status, [("Content-Type", content_type)], protocol="HTTP/1.1")
            request = writer.create_warc_record(url, "request", payload=io.BytesIO(b"GET / HTTP/1.1\r\n\r\n"))
            writer.write_record(request)
            writer.write_record(
                writer.create_warc_record(url, "response", payload=io.BytesIO(body), http_headers=headers)
            )


@pytest.mark.parametrize("gzipped", [True, False])
def test_a_warc_of_real_pages_gives_one_article_per_html_response(tmp_path: Path, gzipped: bool) -> None:
    pages = {
        f"https://crawl.example/{name}": ("200 OK", "text/html; charset=utf-8", (PAGES / name).read_bytes())
        for name in sorted(REAL_PAGES)
    }
    pages["https://crawl.example/moved"] = ("301 Moved Permanently", "text/html", b"")
    pages["https://crawl.example/data.json"] = ("200 OK", "application/json", b"{}")
    warc = tmp_path / ("crawl.warc.gz" if gzipped else "crawl.warc")
    write_warc(warc, pages, gzipped)
    result = ingest([str(warc)], InputConfig())
    assert [(r.title, r.published_at, r.url) for r in result.records] == [
        REAL_PAGES[name] for name in sorted(REAL_PAGES)
    ]
    assert [r.reason for r in result.rejects] == [
        "not a page: HTTP status 301",
        "not an HTML page (content type application/json)",
    ]
    assert not result.file_rejects
    assert [r.line for r in result.records] == [3, 5, 7, 9, 11]  # the response's place among all records


# Missing extras and the command line.


def test_a_missing_extra_is_a_one_line_error_naming_the_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "trafilatura", None)  # as if the html extra were not installed
    page = tmp_path / "page.html"
    page.write_bytes((PAGES / "blog.python.org.html").read_bytes())
    with pytest.raises(
        InputError, match=r"^reading HTML pages needs the html extra: pip install 'storyclust\[html\]'$"
    ):
        iter_ingest([str(page)], InputConfig())
    sniffed = tmp_path / "page.gz"
    sniffed.write_bytes(gzip.compress(page.read_bytes()))
    stream = iter_ingest([str(sniffed)], InputConfig())  # the name does not tell: found when read
    with pytest.raises(InputError, match="needs the html extra"):
        list(stream)
    result = CliRunner().invoke(main, ["run", str(page), "--db", str(tmp_path / "db.duckdb")])
    assert result.exit_code == 2
    assert (
        result.output == "storyclust: error: reading HTML pages needs the html extra: pip install 'storyclust[html]'\n"
    )
    assert not (tmp_path / "db.duckdb").exists()  # refused before the database was touched


@pytest.mark.usefixtures("fake_model")
def test_the_cli_reads_the_api_response_and_warns_of_a_path_that_never_matches(tmp_path: Path) -> None:
    import duckdb

    response = tmp_path / "response.json"
    response.write_text(json.dumps(newsapi_response(2)))
    db = tmp_path / "db.duckdb"
    first = CliRunner().invoke(main, ["run", str(response), "--db", str(db), "-q"])
    assert first.exit_code == 0, first.output
    assert "2 records read, 2 new articles" in first.output and "warning" not in first.output
    articles = tmp_path / "articles.jsonl"
    rows = [
        {"title": f"Pier {n} repaired", "outlet": {"title": "Wire"}, "published_at": "2024-05-01"} for n in range(2)
    ]
    articles.write_text("".join(json.dumps(row) + "\n" for row in rows))
    config = tmp_path / "c.toml"
    config.write_text('[input.fields]\nsource = "outlet.name"\n')
    second = CliRunner().invoke(main, ["run", str(articles), "--db", str(db), "--config", str(config), "-q"])
    assert second.exit_code == 0, second.output
    warning = f"{articles}: field source = 'outlet.name' matched none of 2 records (keys found under 'outlet': title)"
    assert second.output.count("warning: ") == 1
    assert f"warning: {warning}\n" in second.output
    with duckdb.connect(str(db), read_only=True) as con:
        sources = con.execute("SELECT source, count(*) FROM articles GROUP BY ALL ORDER BY ALL").fetchall()
        counters = json.loads(con.execute("SELECT counters FROM runs ORDER BY started_at DESC LIMIT 1").fetchone()[0])
    assert sources == [("Harbour Times", 2), (None, 2)]
    assert counters["warnings"] == [warning]


@pytest.mark.usefixtures("fake_model")
def test_the_cli_says_when_a_records_path_finds_nothing(tmp_path: Path) -> None:
    response = tmp_path / "response.json"
    response.write_text(json.dumps(newsapi_response(1)))
    db = tmp_path / "db.duckdb"
    result = CliRunner().invoke(main, ["run", str(response), "--db", str(db), "--records-path", "results", "-q"])
    assert result.exit_code == 0, result.output
    assert "0 records read" in result.output and "unreadable files: 1 new" in result.output
    listing = CliRunner().invoke(main, ["rejects", "--db", str(db)])
    assert (
        "no records at 'results' (top-level keys: status, totalResults, articles); check --records-path"
        in listing.output
    )
    bad = CliRunner().invoke(main, ["run", str(response), "--db", str(db), "--records-path", "a..b"])
    assert bad.exit_code == 2
    assert (
        bad.output
        == "storyclust: error: input.records_path: 'a..b' is not a path of keys such as articles or data.items\n"
    )


def test_the_config_takes_the_preset_and_the_records_path(tmp_path: Path) -> None:
    from pipeline.config import PRESETS
    from pipeline.ingest.fields import PRESET_FIELDS

    assert set(PRESETS) == {"auto", "none", *PRESET_FIELDS}  # every preset the config offers has its field map
    path = tmp_path / "c.toml"
    path.write_text('[input]\npreset = "newsapi"\nrecords_path = "articles"\n')
    assert (load_config(path).input.preset, load_config(path).input.records_path) == ("newsapi", "articles")
    path.write_text('[input]\npreset = "guardian"\n')
    with pytest.raises(ConfigError, match="input.preset: 'guardian' is not one of auto, none, newsapi"):
        load_config(path)

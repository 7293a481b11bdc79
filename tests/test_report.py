"""The HTML report: what it shows, that it escapes stored text and loads nothing, the `storyclust report` command,
and (slow) the page of a real run in headless Chromium on a phone-sized and a desktop screen."""

from __future__ import annotations

import html
import json
import os
import shutil
import struct
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.report import render_report, write_report
from pipeline.store import MIGRATIONS, Store, apply_migration
from tests.conftest import ROOT, SAMPLE

EVIL = '<script>alert("x")</script> & "Co"'

ARTICLES = [
    # article_id, title, text, source, url, published_at
    (
        "a1",
        "Quake hits Chile",
        "A strong quake shook Chile.",
        "Reuters",
        "https://example.com/q?a=1&b=2",
        "2024-07-08 06:00",
    ),
    ("a2", "Chile quake kills 3", "Three died.", "AP", "javascript:alert(1)", "2024-07-08 09:30"),
    ("a3", "", "Rescuers searched the rubble in Santiago all night.", "AP", None, "2024-07-09 18:00"),
    ("a4", EVIL, "Hostile text.", "<b>Evil</b> Times", None, None),
    ("a5", "NATO summit opens", "Leaders met.", "BBC", None, "2024-07-09 10:00"),
]
STORIES = [
    # story_id, headline, headline_article_id, size, sources, first_seen, last_seen, status, merged_into, reason
    ("s-quake", "Quake hits Chile", "a1", 3, 2, "2024-07-08 06:00", "2024-07-09 18:00", "open", None, "carries 80%"),
    ("s-evil", EVIL, "a4", 2, 2, "2024-07-09 10:00", "2024-07-09 10:00", "open", None, EVIL),
    ("s-old", "Old quake report", None, 1, 1, None, None, "merged", "s-quake", None),
]
MEMBERS = [
    # story_id, article_id, story_similarity, date_agreement, event_dates, shared_names, missing_names, copy of
    ("s-quake", "a1", 0.61, 1.0, ["2024-07-08"], ["chile", "quake"], ["santiago"], None),
    ("s-quake", "a2", 0.58, 0.25, ["2024-07-08"], ["chile", "quake"], [], None),
    ("s-quake", "a3", 0.44, 1.0, [], ["chile"], ["quake"], "a2"),
    ("s-evil", "a4", 0.5, 1.0, [], [EVIL], [], None),
    ("s-evil", "a5", 0.5, 1.0, [], [], [EVIL], None),
]


def make_db(path: Path, with_stories: bool = True) -> Path:
    """A small database written with SQL: two open stories (one full of hostile text), one merged, one run."""
    with Store(path) as store:
        db = store.db
        db.execute(
            "INSERT INTO runs (run_id, status, started_at, finished_at, articles_new) "
            "VALUES ('r-1', 'ok', '2024-07-10 08:00', '2024-07-10 08:01', 5)"
        )
        db.execute("INSERT INTO hot_rejects (run_id, reason) VALUES ('r-1', 'empty: no title or text')")
        if not with_stories:
            return path
        for article_id, title, text, source, url, published_at in ARTICLES:
            db.execute(
                "INSERT INTO hot_articles (article_id, title, text, source, url, published_at, content_hash, run_id, "
                "ingested_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'r-1', now())",
                [article_id, title, text, source, url, published_at, f"h-{article_id}"],
            )
        for story_id, headline, head, size, sources, first, last, status, merged_into, reason in STORIES:
            db.execute(
                "INSERT INTO stories (story_id, headline, headline_article_id, headline_kind, size, sources, first_seen, "
                "last_seen, status, merged_into, headline_reason) VALUES (?, ?, ?, 'title', ?, ?, ?, ?, ?, ?, ?)",
                [story_id, headline, head, size, sources, first, last, status, merged_into, reason],
            )
        for story_id, article_id, similarity, agreement, dates, shared, missing, copy_of in MEMBERS:
            db.execute(
                "INSERT INTO story_members (story_id, article_id, similarity, near_duplicate_group, joined_run_id, "
                "story_similarity, date_agreement, event_dates, shared_names, missing_names) "
                "VALUES (?, ?, ?, ?, 'r-1', ?, ?, ?::DATE[], ?, ?)",
                [story_id, article_id, similarity, copy_of, similarity, agreement, dates, shared, missing],
            )
    return path


@pytest.fixture
def small_db(db: Path) -> Path:
    return make_db(db)


class Tags(HTMLParser):
    """Every start tag with its attributes, and the text of each element kind asked for."""

    def __init__(self, text_of: str = "h2") -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text_of, self.depth, self.texts = text_of, 0, []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == self.text_of:
            self.depth += 1
            self.texts.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == self.text_of:
            self.depth -= 1

    def handle_data(self, data: str) -> None:
        if self.depth:
            self.texts[-1] += data


def parse(page: str, text_of: str = "h2") -> Tags:
    parser = Tags(text_of)
    parser.feed(page)
    parser.close()
    return parser


def test_report_shows_the_stories_their_members_and_the_evidence(small_db: Path) -> None:
    page = render_report(small_db)
    assert "the 2 biggest open stories" in page
    headlines = [" ".join(text.split()) for text in parse(page).texts]
    assert headlines == ["1 Quake hits Chile", f"2 {EVIL}"]  # size order; the merged story is not shown
    for text in ("Chile quake kills 3", "Rescuers searched the rubble", "Reuters", "carries 80%", "r-1"):
        assert text in page
    assert "2024-07-08 06:00" in page and "2024-07-09 18:00" in page and "over 36 h" in page  # the timeline
    assert "0.61" in page and "0.25" in page and ">santiago<" in page and ">2024-07-08<" in page  # the evidence
    assert page.count("<details") == 2 and page.count('<details class="members" open>') == 1
    assert "1 report without a source" not in page and "unknown source" not in page
    stats = dict(zip(parse(page, "dt").texts, parse(page, "dd").texts, strict=True))
    assert stats == {
        "Open stories": "2",
        "Articles": "5",
        "Sources": "4",
        "Merged": "1",
        "Runs": "1",
        "Rejected": "1",
    }


def test_report_limit_keeps_the_biggest(small_db: Path) -> None:
    page = render_report(small_db, limit=1)
    assert "Quake hits Chile" in page and "Hostile text" not in page and "biggest open story of 2" in page


def test_report_escapes_stored_text(small_db: Path) -> None:
    page = render_report(small_db)
    assert "<script" not in page and "<b>Evil" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &quot;Co&quot;" in page
    hrefs = [attrs.get("href") for tag, attrs in parse(page).tags if tag == "a"]
    assert hrefs == ["https://example.com/q?a=1&b=2"]  # javascript: stays text; & unescaped by the parser


def test_report_loads_nothing_from_the_network(small_db: Path) -> None:
    page = render_report(small_db)
    for tag, attrs in parse(page).tags:
        assert tag not in {"script", "img", "iframe", "object", "embed", "video", "audio", "source", "link"}, tag
        for name in ("src", "srcset", "poster", "data"):
            assert name not in attrs, (tag, attrs)
    assert "@import" not in page and "url(" not in page
    assert "default-src 'none'" in page  # the browser is told to refuse anything else, too


def test_report_fits_small_screens(small_db: Path) -> None:
    page = render_report(small_db)
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert "@media (max-width:700px)" in page and 'data-label="Shares"' in page


def test_report_of_an_empty_database(db: Path) -> None:
    make_db(db, with_stories=False)
    page = render_report(db)
    assert "No stories yet" in page and "<details" not in page


def test_report_of_a_database_before_the_evidence_columns(db: Path) -> None:
    """A file no run has upgraded yet (migrations 1-2) still gets a page, without the evidence."""
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR, applied_at TIMESTAMP)")
    for version, (name, sql) in enumerate(MIGRATIONS[:2], start=1):
        apply_migration(con, sql)
        con.execute("INSERT INTO schema_migrations VALUES (?, ?, now())", [version, name])
    con.execute(
        "INSERT INTO articles (article_id, title, content_hash, run_id, ingested_at) VALUES ('a', 'T', 'h', 'r', now())"
    )
    con.execute("INSERT INTO stories (story_id, headline, size, status) VALUES ('s-1', 'Old headline', 1, 'open')")
    con.execute("INSERT INTO story_members (story_id, article_id, joined_run_id) VALUES ('s-1', 'a', 'r')")
    con.close()
    page = render_report(db)
    assert "Old headline" in page and "Why this headline" not in page


def test_write_report_replaces_the_page_and_leaves_no_temporary_file(small_db: Path, tmp_path: Path) -> None:
    out = tmp_path / "site" / "report.html"
    assert write_report(small_db, out) == 2
    out.write_text("old")
    assert write_report(small_db, out, limit=1) == 1
    assert "Quake hits Chile" in out.read_text()
    assert sorted(p.name for p in out.parent.iterdir()) == ["report.html"]


def test_report_command_writes_the_page(small_db: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    result = CliRunner().invoke(main, ["report", "--db", str(small_db), "--out", str(out), "-n", "5"])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"wrote {out}: 2 stories\n"
    assert out.read_text().startswith("<!doctype html>")


@pytest.mark.parametrize(
    ("where", "code", "message"),
    [
        ("missing-db", 1, "storyclust: error: database not found"),
        ("file-in-the-way", 2, "storyclust: error: cannot write {tmp}/blocker/report.html: {tmp}/blocker is a file"),
    ],
)
def test_report_command_errors_are_one_line(
    small_db: Path, tmp_path: Path, where: str, code: int, message: str
) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    db = tmp_path / "none.duckdb" if where == "missing-db" else small_db
    result = CliRunner().invoke(main, ["report", "--db", str(db), "--out", str(blocker / "report.html")])
    assert result.exit_code == code
    assert result.stderr.startswith(message.format(tmp=tmp_path)) and result.stderr.count("\n") == 1, result.stderr


@pytest.mark.parametrize("args", [["--limit", "0"], [], ["--out", "."]])
def test_report_command_bad_usage_exits_2(small_db: Path, args: list[str]) -> None:
    result = CliRunner().invoke(main, ["report", "--db", str(small_db), *args])
    assert result.exit_code == 2, result.output


@pytest.mark.parametrize("command", ["report", "export"])
def test_new_commands_have_help(command: str) -> None:
    result = CliRunner().invoke(main, [command, "--help"])
    assert result.exit_code == 0 and "Example:" in result.output and "--db" in result.output


# -- a real run in a real browser -----------------------------------------------------------------------


def chromium_binary() -> str:
    """The browser; missing, the test fails (a check that skips cannot report a broken page)."""
    binary = shutil.which("chromium")
    if binary is None:
        pytest.fail("chromium not found: install it with `apt-get install -y chromium` (`make test` does)")
    return binary


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [chromium_binary(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    command += [f"--user-data-dir={tmp_path / 'chromium-profile'}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


def measuring_page(page: str, width: int) -> str:
    """A page that shows `page` in a frame `width` pixels wide, unfolds every story's members and writes down
    how wide the content is (headless Chromium keeps its own window at least 500 px wide)."""
    return f"""<!doctype html><html><body style="margin:0">
<iframe id="f" style="width:{width}px;height:800px;border:0" srcdoc="{html.escape(page, quote=True)}"></iframe>
<script>
const frame = document.getElementById("f");
function measure() {{
  const doc = frame.contentDocument;
  for (const d of doc.querySelectorAll("details")) d.open = true;
  const root = doc.documentElement;
  document.body.dataset.measured = JSON.stringify({{scroll: root.scrollWidth, client: root.clientWidth}});
}}
if (frame.contentDocument && frame.contentDocument.readyState === "complete" && frame.contentDocument.body.children.length) measure();
else frame.addEventListener("load", measure);
</script></body></html>"""


@pytest.mark.slow
def test_report_of_a_real_run_in_chromium(tmp_path: Path) -> None:
    chromium_binary()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    db, out = tmp_path / "news.duckdb", tmp_path / "report.html"
    cli = [sys.executable, "-m", "pipeline.cli"]
    subprocess.run([*cli, "run", str(SAMPLE), "--db", str(db), "-q"], cwd=ROOT, env=env, check=True, timeout=600)
    done = subprocess.run(
        [*cli, "report", "--db", str(db), "--out", str(out)], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    with duckdb.connect(str(db), read_only=True) as con:
        headlines = [row[0] for row in con.execute("SELECT headline FROM top_stories").fetchall()]
    assert (
        headlines and done.stdout == f"wrote {out}: {len(headlines)} {'story' if len(headlines) == 1 else 'stories'}\n"
    )

    dom = chromium(tmp_path, "--dump-dom", out.as_uri()).stdout
    shown = [" ".join(text.split()) for text in parse(dom).texts]
    assert len(shown) == len(headlines)
    for rank, headline in enumerate(headlines, start=1):
        assert shown[rank - 1] == f"{rank} {' '.join(headline.split())}"

    # Nothing wider than the screen, with every story's members unfolded.
    for width in (390, 1280):
        measured = tmp_path / f"measured-{width}.html"
        measured.write_text(measuring_page(out.read_text(), width))
        dom = chromium(
            tmp_path, "--window-size=1400,900", "--virtual-time-budget=5000", "--dump-dom", measured.as_uri()
        )
        (body,) = [attrs for tag, attrs in parse(dom.stdout).tags if tag == "body"]
        assert "data-measured" in body, "the measuring script did not run"
        sizes = json.loads(str(body["data-measured"]))
        assert 0 < sizes["scroll"] <= sizes["client"] <= width, (width, sizes)

    shots = {"phone": (390, 844), "desktop": (1280, 900)}
    for name, (width, height) in shots.items():
        png = tmp_path / f"report-{name}.png"
        chromium(tmp_path, f"--screenshot={png}", f"--window-size={width},{height}", out.as_uri())
        assert png.exists() and png_size(png) == (width, height)
        assert png.stat().st_size > 20_000, f"{png} is nearly empty"
        if os.environ.get("STORYCLUST_SCREENSHOTS"):  # refresh the README's pictures: docs/report-*.png
            shutil.copyfile(png, ROOT / "docs" / png.name)

"""Report: one self-contained HTML page of the biggest open stories, their members and the evidence.

The page loads nothing (no CDN, fonts, scripts or images, and a Content-Security-Policy that forbids them), so it
can be opened offline, mailed or published as it is and always looks the same. Every stored text is escaped:
titles, sources and URLs come from the open web.
"""

from __future__ import annotations

import contextlib
import html
import os
import secrets
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from pipeline.errors import OutputError
from pipeline.export import why_unwritable
from pipeline.store import MemberEvidence, SourceCount, Store, StoryHead, Summary

MEMBERS_SHOWN = 100  # per story: a bigger story says how many more there are and how to see them all
TEXT_START_CHARS = 160  # an untitled member is shown by the start of its text


@dataclass(frozen=True)
class StoryView(StoryHead):
    """A story's head as the store gives it, with the members, times and sources its card shows."""

    members: list[MemberEvidence]  # the first MEMBERS_SHOWN, in time order
    times: list[datetime]  # publication times of all members (undated ones left out)
    top_sources: list[SourceCount]  # most members first


@dataclass(frozen=True)
class Report:
    db: str
    summary: Summary
    stories: list[StoryView]
    generated_at: datetime


def load_report(db_path: str | Path, limit: int = 50, wait_seconds: float = 0.0) -> Report:
    """Read what the page shows, in one read-only connection (a running `storyclust run` is not disturbed);
    `wait_seconds`: how long to wait for another program that holds the file open for writing."""
    with Store(db_path, read_only=True, wait_seconds=wait_seconds) as store:
        summary = store.summary()
        heads = store.story_heads(limit)
        ids = [head.story_id for head in heads]
        members = store.member_evidence(ids, MEMBERS_SHOWN, TEXT_START_CHARS)
        times = store.member_times(ids)
        sources = store.member_sources(ids)
    stories = [
        StoryView(
            **vars(head),
            members=members[head.story_id],
            times=times[head.story_id],
            top_sources=sources[head.story_id],
        )
        for head in heads
    ]
    return Report(str(db_path), summary, stories, datetime.now().replace(microsecond=0))


def render_report(db_path: str | Path, limit: int = 50, wait_seconds: float = 0.0) -> str:
    """The HTML page of the `limit` biggest open stories; an empty database gives a page that says so."""
    return render_html(load_report(db_path, limit, wait_seconds))


def write_report(db_path: str | Path, out: str | Path, limit: int = 50, wait_seconds: float = 0.0) -> int:
    """Write the page to `out` (through a temporary file, so a half-written page never appears); return the
    number of stories on it."""
    report = load_report(db_path, limit, wait_seconds)
    page = render_html(report)
    out = Path(out)
    temporary = out.with_name(f".{out.name}.{secrets.token_hex(4)}.tmp")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), "w", encoding="utf-8") as file:
            file.write(page)
        os.replace(temporary, out)
    except OSError as problem:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)
        raise OutputError(f"cannot write {out}: {why_unwritable(out, problem)}") from None
    return len(report.stories)


# -- HTML -----------------------------------------------------------------------------------------------


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _when(moment: datetime | date | None) -> str:
    """A time to the minute; a date alone when the feed gave no time of day."""
    if moment is None:
        return "—"
    if not isinstance(moment, datetime):
        return moment.isoformat()
    if (moment.hour, moment.minute, moment.second) == (0, 0, 0):
        return moment.date().isoformat()
    return moment.strftime("%Y-%m-%d %H:%M")


def _duration(seconds: float) -> str:
    if seconds < 3600:
        return f"{max(1, round(seconds / 60))} min"
    if seconds < 48 * 3600:
        return f"{round(seconds / 3600)} h"
    return f"{round(seconds / 86400)} days"


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n:,} {word if n == 1 else plural or word + 's'}"


def _score(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def render_html(report: Report) -> str:
    s = report.summary
    shown = len(report.stories)
    if shown:
        scope = f"the {_plural(shown, 'biggest open story', 'biggest open stories')}"
        if shown < s.open_stories:
            scope += f" of {s.open_stories:,}"
        body = "\n".join(_story(story, rank) for rank, story in enumerate(report.stories, start=1))
    else:
        scope = "no stories yet"
        body = (
            '<section class="empty"><h2>No stories yet</h2><p>This database holds no open story. Build them with '
            f"<code>storyclust run INPUTS --db {_e(report.db)}</code>, then write this page again.</p></section>"
        )
    stats = [
        ("Open stories", f"{s.open_stories:,}"),
        ("Articles", f"{s.articles:,}"),
        ("Sources", f"{s.sources:,}"),
        ("Merged", f"{s.merged_stories:,}"),
        ("Runs", f"{s.runs:,}"),
        ("Rejected", f"{s.rejected:,}"),
    ]
    stat_html = "".join(f"<div><dt>{label}</dt><dd>{value}</dd></div>" for label, value in stats)
    if s.last_run_id:
        parts = [
            f"Last run {_e(_when(s.last_run_at))}",
            f'<span class="badge {_e(s.last_run_status)}">{_e(s.last_run_status)}</span>',
            *([_plural(s.last_run_new, "new article")] if s.last_run_new is not None else []),
            f"<code>{_e(s.last_run_id)}</code>",
        ]
        run_note = " · ".join(parts)
    else:
        run_note = "No run recorded."
    try:
        version = metadata.version("storyclust")
    except metadata.PackageNotFoundError:
        version = "dev"
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="generator" content="storyclust {_e(version)}">
<title>storyclust: {_e(scope)}</title>
<style>{CSS}</style>
</head>
<body>
<header class="top">
<h1>Stories <span class="scope">{_e(scope)}</span></h1>
<p class="muted"><code title="{_e(report.db)}">{_e(Path(report.db).name)}</code> · written {_e(_when(report.generated_at))}</p>
<dl class="stats">{stat_html}</dl>
<p class="muted run">{run_note}</p>
</header>
<main>
{body}
</main>
<footer class="muted">Written by storyclust {_e(version)}. The page loads nothing from the network.
Evidence: <b>similarity</b> is a member's mean similarity to the other members when it joined (the merge rule
needs <code>cluster.merge_similarity</code>); <b>date agreement</b> is 1 when its event dates agree with the
others' or it has none; <b>shares</b> and <b>lacks</b> are the names and numbers at least half of the members
give, which it has (evidence for) or lacks (evidence against).</footer>
</body>
</html>
"""


def _story(story: StoryView, rank: int) -> str:
    sources = ", ".join(
        f"{_e(top.source)} ({top.members})" if top.members > 1 else _e(top.source) for top in story.top_sources[:5]
    )
    if len(story.top_sources) > 5:
        sources += f", and {_plural(len(story.top_sources) - 5, 'more source')}"
    unsourced = story.size - sum(top.members for top in story.top_sources)
    if unsourced > 0:
        sources += (
            f'{" · " if sources else ""}<span class="muted">{_plural(unsourced, "report")} without a source</span>'
        )
    reason = (
        f'<p class="reason"><b>Why this headline:</b> {_e(story.headline_reason)}</p>' if story.headline_reason else ""
    )
    span = ""
    if story.times:
        first, last = min(story.times), max(story.times)
        span = f"<span>{_e(_when(first))}{' → ' + _e(_when(last)) if last != first else ''}</span>"
    return f"""<article class="story" id="{_e(story.story_id)}">
<h2><span class="rank">{rank}</span> {_e(story.headline)}</h2>
<p class="meta"><span class="pill">{_plural(story.size, "report")}</span><span class="pill">{_plural(story.sources, "source")}</span>{span}</p>
{f'<p class="sources">{sources}</p>' if sources else ""}
{reason}
{_timeline(story)}
{_members(story, open_=rank == 1)}
<p class="id muted">story <code>{_e(story.story_id)}</code> · <code>storyclust show {_e(story.story_id)}</code></p>
</article>"""


def _timeline(story: StoryView) -> str:
    """Member publication times as dots across the story's span (rounded to half a percent, so a story of
    thousands of reports is still a short line of markup)."""
    undated = story.size - len(story.times)
    if not story.times:
        return '<p class="timeline-none muted">No publication times: the timeline needs dated reports.</p>'
    first, last = min(story.times), max(story.times)
    span = (last - first).total_seconds()
    positions = Counter(
        round((moment - first).total_seconds() / span * 200) / 2 if span else 50.0 for moment in story.times
    )
    dots = "".join(
        f'<span class="dot{" many" if n > 1 else ""}" style="left:{position:g}%" title="{_plural(n, "report")}"></span>'
        for position, n in sorted(positions.items())
    )
    label = f"{_plural(len(story.times), 'report')} " + (f"over {_duration(span)}" if span else f"at {_when(first)}")
    note = f", {undated:,} undated" if undated else ""
    ends = f'<div class="ends"><span>{_e(_when(first))}</span><span>{_e(_when(last))}</span></div>' if span else ""
    return f"""<div class="timeline">
<p class="caption muted">Timeline: {_e(label + note)}</p>
<div class="track" aria-hidden="true">{dots}</div>
{ends}
</div>"""


def _link(url: str | None) -> str:
    """A web address as a link, anything else (javascript:, data:, relative) as plain text."""
    if not url:
        return ""
    if url.lower().startswith(("http://", "https://")):
        return f'<a href="{_e(url)}" rel="noopener noreferrer nofollow">{_e(url)}</a>'
    return f"<span>{_e(url)}</span>"


def _chips(values: list[Any], kind: str) -> str:
    if not values:
        return '<span class="muted">—</span>'
    return "".join(f'<span class="chip {kind}">{_e(_when(v) if isinstance(v, date) else v)}</span>' for v in values)


def _members(story: StoryView, open_: bool) -> str:
    rows = []
    for m in story.members:
        if m.title:
            title = f'<span class="title">{_e(m.title)}</span>'
        else:
            start = m.text_start or ""
            start = start[:TEXT_START_CHARS] + "…" if len(start) > TEXT_START_CHARS else start
            title = f'<span class="title untitled">{_e(start) or "(no title or text)"}</span>'
        badges = ""
        if m.article_id == story.headline_article_id:
            badges += '<span class="badge headline">headline</span>'
        if m.near_duplicate_group and m.near_duplicate_group != m.article_id:
            badges += f'<span class="badge copy" title="near-duplicate of {_e(m.near_duplicate_group)}">copy</span>'
        where = " · ".join(part for part in (_e(m.source) if m.source else "", _link(m.url)) if part)
        similarity = m.story_similarity
        bar = (
            f'<span class="bar"><span style="width:{max(0.0, min(1.0, similarity)) * 100:.0f}%"></span></span>'
            if similarity is not None
            else ""
        )
        low = ' class="low"' if m.date_agreement is not None and m.date_agreement < 0.5 else ""
        rows.append(
            f"""<tr>
<td class="report" data-label="Report">{title}{badges}<span class="where">{where or '<span class="muted">unknown source</span>'}</span></td>
<td data-label="Published"><div>{_e(_when(m.published_at)) if m.published_at else '<span class="muted">undated</span>'}</div></td>
<td data-label="Similarity" class="num"><div>{bar}{_score(similarity)}</div></td>
<td data-label="Date agreement" class="num"><div{low}>{_score(m.date_agreement)}</div></td>
<td data-label="Event dates"><div>{_chips(m.event_dates, "date")}{_TIME_EVIDENCE.get(m.time_evidence or "", "")}</div></td>
<td data-label="Shares"><div>{_chips(m.shared_names, "for")}</div></td>
<td data-label="Lacks"><div>{_chips(m.missing_names, "against")}</div></td>
</tr>"""
        )
    more = ""
    if story.size > len(story.members):
        more = (
            f'<p class="muted more">Showing the first {len(story.members):,} of {story.size:,} reports: '
            f"<code>storyclust show {_e(story.story_id)}</code> or <code>storyclust export</code> lists them all.</p>"
        )
    return f"""<details class="members"{" open" if open_ else ""}>
<summary>Reports and evidence <span class="muted">({_plural(story.size, "report")})</span></summary>
<div class="table-box">
<table>
<thead><tr><th scope="col">Report</th><th scope="col">Published</th><th scope="col" title="mean similarity to the other members when it joined">Similarity</th><th scope="col" title="1: its event dates agree with the others' (or it has none)">Date agreement</th><th scope="col">Event dates</th><th scope="col" title="names and numbers most members give that it has: evidence for">Shares</th><th scope="col" title="names and numbers most members give that it lacks: evidence against">Lacks</th></tr></thead>
<tbody>
{"".join(rows)}
</tbody>
</table>
</div>
{more}
</details>"""


# Which evidence fixed a report's event time, under its dates (nothing for a file from before it was stored).
_TIME_EVIDENCE = {
    "text": ' <span class="muted">from its text</span>',
    "publication": ' <span class="muted">publication date</span>',
    "neighbour": ' <span class="muted">from the dated report most like it</span>',
    "none": '<span class="muted">no date: neutral on time</span>',
}


CSS = """
:root{--bg:#f5f6f8;--card:#fff;--ink:#1d2330;--muted:#5d6675;--line:#e1e4ea;--accent:#2454c5;--accent-soft:#e8eefc;
--for:#e3f4e8;--for-ink:#17623a;--against:#fbe9e7;--against-ink:#a1321f;--date:#eef0f4;color-scheme:light dark}
@media (prefers-color-scheme:dark){:root{--bg:#15181e;--card:#1e222a;--ink:#e6e8ec;--muted:#9aa3b2;--line:#323844;
--accent:#8fb0ff;--accent-soft:#26324d;--for:#1d3a2a;--for-ink:#9be0b4;--against:#462622;--against-ink:#ffb4a6;--date:#2a2f39}}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0 auto;max-width:1160px;padding:24px 20px 40px;background:var(--bg);color:var(--ink);
font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;overflow-wrap:anywhere}
code{font:0.85em/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:var(--date);padding:1px 5px;border-radius:4px}
a{color:var(--accent)}
.muted{color:var(--muted)}
h1{font-size:1.6rem;margin:0 0 4px;line-height:1.25}
h1 .scope{display:block;font-size:0.95rem;font-weight:500;color:var(--muted)}
.top p{margin:4px 0}
.stats{display:grid;grid-template-columns:repeat(auto-fit,minmax(130px,1fr));gap:10px;margin:16px 0 10px}
.stats div{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:10px 14px}
.stats dt{font-size:0.8rem;color:var(--muted)}
.stats dd{margin:0;font-size:1.35rem;font-weight:650;font-variant-numeric:tabular-nums}
.story,.empty{background:var(--card);border:1px solid var(--line);border-radius:12px;padding:18px 20px;margin:16px 0;
box-shadow:0 1px 2px rgba(20,30,50,.04)}
.story h2{font-size:1.2rem;line-height:1.35;margin:0 0 8px}
.rank{display:inline-block;min-width:1.9em;padding:0 6px;margin-right:4px;border-radius:6px;background:var(--accent-soft);
color:var(--accent);font-size:0.85rem;text-align:center;vertical-align:0.15em}
.meta{display:flex;flex-wrap:wrap;gap:6px 12px;align-items:center;margin:0 0 6px;color:var(--muted);font-size:0.9rem}
.pill{background:var(--date);color:var(--ink);border-radius:999px;padding:1px 10px;font-weight:550}
.sources{margin:0 0 6px;font-size:0.9rem}
.reason{margin:0 0 10px;font-size:0.88rem;color:var(--muted)}
.reason b{color:var(--ink);font-weight:600}
.timeline{margin:8px 0 6px}
.track{position:relative;height:22px;margin:0 7px;border-radius:11px;background:var(--date)}
.track::before{content:"";position:absolute;left:0;right:0;top:10px;height:2px;background:var(--line)}
.dot{position:absolute;top:6px;width:10px;height:10px;margin-left:-5px;border-radius:50%;background:var(--accent);opacity:.75}
.dot.many{top:4px;width:14px;height:14px;margin-left:-7px;opacity:.9}
.ends{display:flex;justify-content:space-between;gap:8px;font-size:0.78rem;margin-top:3px;font-variant-numeric:tabular-nums}
.ends span{white-space:nowrap}
.caption{margin:0 0 4px;font-size:0.8rem}
.timeline-none{font-size:0.85rem;margin:6px 0}
details.members{margin-top:12px;border-top:1px solid var(--line);padding-top:8px}
summary{cursor:pointer;font-weight:600;padding:4px 0}
.table-box{overflow-x:auto;margin-top:8px}
table{width:100%;border-collapse:collapse;font-size:0.87rem}
th{text-align:left;font-weight:600;color:var(--muted);font-size:0.78rem;border-bottom:1px solid var(--line);padding:6px 8px;white-space:nowrap}
td{vertical-align:top;padding:8px;border-bottom:1px solid var(--line)}
tbody tr:last-child td{border-bottom:0}
td.report{min-width:260px;width:34%}
td.num{white-space:nowrap;font-variant-numeric:tabular-nums}
.title{display:block;font-weight:550}
.title.untitled{font-weight:400;font-style:italic}
.where{display:block;color:var(--muted);font-size:0.82rem;margin-top:2px}
.bar{display:inline-block;width:44px;height:6px;border-radius:3px;background:var(--date);margin-right:6px;vertical-align:middle;overflow:hidden}
.bar span{display:block;height:100%;background:var(--accent)}
.low{color:var(--against-ink);font-weight:650}
.chip{display:inline-block;margin:1px 4px 2px 0;padding:0 7px;border-radius:999px;font-size:0.78rem;background:var(--date)}
.chip.for{background:var(--for);color:var(--for-ink)}
.chip.against{background:var(--against);color:var(--against-ink)}
.badge{display:inline-block;margin:2px 6px 0 0;padding:0 6px;border-radius:4px;font-size:0.72rem;font-weight:600;
text-transform:uppercase;letter-spacing:.03em;background:var(--accent-soft);color:var(--accent)}
.badge.copy{background:var(--date);color:var(--muted)}
.badge.ok{background:var(--for);color:var(--for-ink)}
.badge.failed{background:var(--against);color:var(--against-ink)}
.run .badge{margin:0}
.more{font-size:0.85rem}
.id{font-size:0.8rem;margin:10px 0 0}
footer{font-size:0.8rem;margin-top:28px;max-width:80ch}
@media (max-width:700px){
body{padding:14px 12px 28px;font-size:15px}
h1{font-size:1.35rem}
.stats{grid-template-columns:repeat(3,1fr);gap:6px}
.stats div{padding:6px 9px}
.stats dd{font-size:1.1rem}
.story,.empty{padding:14px;border-radius:10px}
.story h2{font-size:1.08rem}
.table-box{overflow-x:visible}
table,tbody,tr,td{display:block;width:auto}
thead{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}
tr{border:1px solid var(--line);border-radius:8px;margin:0 0 10px;padding:4px 10px}
td{display:grid;grid-template-columns:7.5em 1fr;gap:8px;border:0;padding:4px 0}
td::before{content:attr(data-label);color:var(--muted);font-size:0.78rem;padding-top:1px}
td.report{display:block;min-width:0;width:auto;padding:6px 0;border-bottom:1px solid var(--line)}
td.report::before{content:none}
}
"""

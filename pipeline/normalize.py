"""Normalize stage: clean titles and bodies of raw records into `Article`s.

Cleaning is conservative and idempotent (cleaning clean text changes nothing): Unicode NFKC, HTML entities
and tags, whitespace, source names glued before or after the text, wire datelines and truncation marks.
The raw strings are kept beside the clean ones so nothing is lost.
"""

from __future__ import annotations

import html
import re
import unicodedata

import pyarrow as pa

from pipeline.records import ARTICLE_SCHEMA, Article, RawRecord, content_hash, records_table, table_records
from pipeline.stage import StageResult

_TAG = re.compile(r"<[^>]{0,400}>")
_ZERO_WIDTH = re.compile("[\u200b\u200c\u200d\u2060\ufeff\u00ad]")
_SPACE = re.compile(r"\s+")
_ESCAPED_PUNCT = re.compile(r"\\([/()?&'\"])")
# Trailing "…" or "...", possibly after a comma or space: the mark a feed or search page leaves on a cut text.
_TRUNCATION = re.compile(r"[\s,;:]*(?:\.{3,}|…)\s*$")
# "Some Outlet on MSNHeadline": aggregator badges glued to the headline by copy and paste.
_GLUED_AGGREGATOR = re.compile(
    r"^(?P<source>[^\n]{2,80}?)\s+(?:on|via)\s+(?:MSN|Yahoo(?:\s+News)?|AOL|Google News|SmartNews|Flipboard)"
    r"(?=[A-Z][a-z]|[0-9\"'‘“])"
)
# Wire datelines at the start of a body: "WASHINGTON (Reuters) -", "B RUSSELS—" (a drop cap split off).
_DATELINE = re.compile(
    r"^(?:[A-Z][A-Z.'’]*(?:[ ,]+[A-Z][A-Z.'’]*){0,4})(?:,\s*[A-Z][A-Za-z.]+)?"
    r"(?:\s*\((?:[A-Z][\w.&' ]{0,30})\))?\s*(?:—|–|--|-\s)\s*"
)
# Credits and source tags at the end: "(Video: The Washington Post)", "— Ukrinform.", "(Reuters)".
_CREDIT_TAG = re.compile(
    r"\s*\((?:(?:Video|Photo|Photos|Image|Credit|Source|Audio)s?:\s*)?(?P<source>[A-Z][\w.&'’ -]{1,50})\)\.?\s*$"
)
_DASH_TAG = re.compile(r"\s+[—–]\s*(?P<source>[A-Z][\w.&'’-]*(?:\s+[A-Z][\w.&'’-]*){0,4})\.?\s*$")
_SEPARATOR_TAG = re.compile(r"\s+[-|–—:]\s+(?P<source>[^-|–—:]{2,60})$")
_CREDIT_WORDS = {"video", "photo", "photos", "image", "credit", "source", "audio"}
_AGGREGATORS = ("MSN", "Yahoo", "AOL", "Google News", "SmartNews", "Flipboard")  # as in _GLUED_AGGREGATOR
_NOT_ALPHANUMERIC = re.compile(r"[^a-z0-9]")


def clean_text(value: str | None) -> str:
    """Unicode, HTML and whitespace cleaning shared by titles, bodies and source names.

    Each step runs only where its pattern can match (a tag needs "<", a zero-width character is not
    ASCII, an escape needs a backslash): most headlines need none of them, and a run cleans 200k.
    """
    if not value:
        return ""
    text = html.unescape(html.unescape(value))
    if "<" in text:
        text = _TAG.sub(" ", text)
    text = unicodedata.normalize("NFKC", text)
    if not text.isascii():
        text = _ZERO_WIDTH.sub("", text)
    while "\\" in text:  # an escaped backslash before the punctuation: unescape until none is left
        unescaped = _ESCAPED_PUNCT.sub(r"\1", text)
        if unescaped == text:
            break
        text = unescaped
    return " ".join(text.split())  # what `\s+` → " " and strip() give: both split on str.isspace()


def strip_truncation(text: str) -> tuple[str, bool]:
    """Remove a trailing truncation mark; report whether there was one."""
    if "..." not in text and "…" not in text:
        return text, False
    stripped = _TRUNCATION.sub("", text)
    return stripped, stripped != text


def split_glued_source(title: str) -> tuple[str, str | None]:
    """Split "Outlet on MSNHeadline" into ("Headline", "Outlet")."""
    if not any(name in title for name in _AGGREGATORS):
        return title, None
    match = _GLUED_AGGREGATOR.match(title)
    if not match:
        return title, None
    return title[match.end() :].strip(), match.group("source").strip()


def strip_dateline(text: str) -> str:
    """Remove a wire dateline such as "BRUSSELS —" or "B RUSSELS—" at the start of a body."""
    if not "A" <= text[:1] <= "Z":
        return text
    match = _DATELINE.match(text)
    if not match:
        return text
    letters = sum(ch.isalpha() for ch in match.group(0))
    rest = text[match.end() :]
    if letters < 3 or not rest:
        return text
    return rest


def strip_source_tags(text: str, source: str | None, *, loose: bool = True) -> tuple[str, str | None]:
    """Remove credits and source tags at the end of a text; return the text and the source they name.

    `loose` also accepts an unknown short Title Case name ("— Ukrinform."); headlines use the strict form,
    where "(Update 2)" must survive.
    """
    found: str | None = None
    changed = True
    while changed and text:
        changed = False
        for pattern in _possible_tags(text):
            match = pattern.search(text)
            if match and _looks_like_source(match.group("source"), source, match.group(0), loose):
                found = found or match.group("source").strip().rstrip(".")
                text = text[: match.start()].rstrip()
                changed = True
    return text, found


def _possible_tags(text: str) -> list[re.Pattern[str]]:
    """The tag patterns that can match at the end of `text`: a credit ends in ")" (and a dot), a dash
    tag needs a dash."""
    patterns = []
    if text.rstrip().endswith((")", ").")):
        patterns.append(_CREDIT_TAG)
    if "—" in text or "–" in text:
        patterns.append(_DASH_TAG)
    return patterns


def strip_title_source_suffix(title: str, source: str | None) -> str:
    """Remove " - Outlet" or " | Outlet" from a headline when it names the record's own source."""
    if not source:
        return title
    match = _SEPARATOR_TAG.search(title)
    if match and _same_name(match.group("source"), source):
        return title[: match.start()].rstrip()
    return title


def _looks_like_source(candidate: str, source: str | None, whole: str, loose: bool) -> bool:
    """A tag names a source if it matches the known source, or is an explicit credit, or is short Title Case."""
    candidate = candidate.strip()
    if source and _same_name(candidate, source):
        return True
    lowered = whole.strip().lstrip("(").lower()
    if any(lowered.startswith(word) for word in _CREDIT_WORDS):
        return True
    if not loose:
        return False
    words = candidate.split()
    return 1 <= len(words) <= 4 and all(w[:1].isupper() or not w[:1].isalpha() for w in words)


def _same_name(left: str, right: str) -> bool:
    def fold(value: str) -> str:
        return _NOT_ALPHANUMERIC.sub("", value.lower())

    return bool(fold(left)) and fold(left) == fold(right)


def normalize_record(record: RawRecord, article_id: str | None = None) -> Article:
    """Clean one raw record into an article; the id defaults to the record's id or its content hash."""
    return _article(record, _cleaned(record.title, record.text, record.source), article_id)


# A record's clean title, text and source, and the notes cleaning added.
_Cleaned = tuple[str, str, str | None, tuple[str, ...]]


def _cleaned(raw_title: str, raw_text: str, raw_source: str | None) -> _Cleaned:
    """The clean title, text and source of a record, and the notes cleaning adds (from these three only)."""
    title = clean_text(raw_title)
    text = clean_text(raw_text)
    source = clean_text(raw_source) or None
    notes: list[str] = []

    title, glued = split_glued_source(title)
    source = source or glued
    title, title_cut = strip_truncation(title)
    text, text_cut = strip_truncation(text)
    if title_cut or text_cut:
        notes.append("truncated")
    if title_cut:
        notes.append("title truncated")
    text = strip_dateline(text)
    text, text_source = strip_source_tags(text, source)
    title, title_source = strip_source_tags(title, source, loose=False)
    source = source or text_source or title_source
    title = strip_title_source_suffix(title, source)
    return title, text, source, tuple(notes)


def _article(record: RawRecord, cleaned: _Cleaned, article_id: str | None = None) -> Article:
    title, text, source, notes = cleaned
    return Article(
        article_id=article_id or record.id or f"h-{content_hash(record.title, record.text)[:16]}",
        title=title,
        text=text,
        title_raw=record.title,
        text_raw=record.text,
        source=source,
        url=clean_text(record.url) or None,
        published_at=record.published_at,
        file=record.file,
        line=record.line,
        notes=[*record.notes, *notes],
    )


def normalize_records(records: list[RawRecord]) -> list[Article]:
    """`normalize_record` of each record, each distinct title, text and source cleaned once: a stream
    repeats its wire copies (a quarter of the records of the 200k-item bench stream)."""
    cleaned: dict[tuple[str, str, str | None], _Cleaned] = {}
    articles = []
    for record in records:
        key = (record.title, record.text, record.source)
        found = cleaned.get(key)
        if found is None:
            found = cleaned[key] = _cleaned(*key)
        articles.append(_article(record, found))
    return articles


class NormalizeStage:
    """Item stage: a table of raw records (`RAW_RECORD_SCHEMA`) in, a table of articles out."""

    name = "normalize"

    def __call__(self, table: pa.Table) -> StageResult:
        articles = normalize_records(table_records(table, RawRecord))
        return StageResult(records_table(articles, ARTICLE_SCHEMA), {"new": len(articles)})

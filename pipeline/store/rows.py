"""Typed records the store returns: callers read named fields, never column positions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime


@dataclass(frozen=True)
class Reopening:
    """A closed story that took a new report, and on which evidence."""

    story_id: str
    article_id: str
    run_id: str
    gap_hours: float
    time_evidence: str | None
    story_similarity: float | None
    date_agreement: float | None


@dataclass(frozen=True)
class TopStory:
    story_id: str
    size: int
    sources: int | None
    first_seen: datetime | None
    last_seen: datetime | None
    headline: str


@dataclass(frozen=True)
class StoryMember:
    article_id: str
    source: str | None
    published_at: datetime | None
    similarity: float | None
    near_duplicate_group: str | None
    title: str | None
    text: str | None


@dataclass(frozen=True)
class Story:
    """One story (a merged id already resolved to its survivor) and its members in time order."""

    story_id: str
    headline: str
    size: int
    sources: int | None
    first_seen: datetime | None
    last_seen: datetime | None
    status: str
    members: list[StoryMember]


@dataclass(frozen=True)
class UnreadableFile:
    file: str
    size: int
    sha256: str
    reason: str
    first_seen: datetime
    last_seen: datetime


@dataclass(frozen=True)
class RejectReason:
    reason: str
    count: int
    example: str  # where one such record is: file:line


@dataclass(frozen=True)
class PruneCounts:
    stories: int
    articles: int


@dataclass(frozen=True)
class Summary:
    """The state of the database, so a reader knows how fresh and how big the picture is."""

    open_stories: int
    merged_stories: int
    articles: int
    sources: int
    runs: int
    rejected: int
    last_run_id: str | None
    last_run_status: str | None
    last_run_at: datetime | None
    last_run_new: int | None


@dataclass(frozen=True)
class StoryHead:
    """A story as the report heads it."""

    story_id: str
    headline: str
    headline_article_id: str | None
    headline_reason: str | None
    size: int
    sources: int


@dataclass(frozen=True)
class MemberEvidence:
    """A member as the report shows it: the start of its text and the evidence it joined on."""

    article_id: str
    title: str | None
    text_start: str | None
    source: str | None
    url: str | None
    published_at: datetime | None
    story_similarity: float | None
    date_agreement: float | None
    event_dates: list[date]
    shared_names: list[str]
    missing_names: list[str]
    near_duplicate_group: str | None
    time_evidence: str | None = None  # text, publication or none (None: a file from before migration 5)


@dataclass(frozen=True)
class SourceCount:
    source: str
    members: int

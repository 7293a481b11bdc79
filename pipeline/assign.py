"""Story assignment: map this run's clusters onto stories — join, create or merge — and say why.

Existing memberships never move except through a recorded merge, and the older id survives. Each new
member's row carries its evidence (similarity and date agreement with the story, shared and missing names),
and each touched story gets its canonical headline.
"""

from __future__ import annotations

import bisect
import hashlib
import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from itertools import chain
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from pipeline.config import Config
from pipeline.records import Article

if TYPE_CHECKING:
    from pipeline.records import StoryOrigin


def story_id_for(article_id: str) -> str:
    """A story's id comes from its founding article, so the same input always yields the same ids."""
    return "s-" + hashlib.sha1(article_id.encode()).hexdigest()[:12]


# The columns of story_members a run writes from its plan (all but joined_run_id), with their Arrow types.
MEMBER_SCHEMA = pa.schema(
    [
        ("story_id", pa.string()),
        ("article_id", pa.string()),
        ("similarity", pa.float32()),
        ("nearest_article_id", pa.string()),
        ("nearest_similarity", pa.float32()),
        ("near_duplicate_group", pa.string()),
        ("story_similarity", pa.float32()),
        ("date_agreement", pa.float32()),
        ("event_dates", pa.list_(pa.date32())),
        ("shared_names", pa.list_(pa.string())),
        ("missing_names", pa.list_(pa.string())),
        ("time_evidence", pa.string()),
    ]
)


class MemberRows:
    """The story_members rows of a plan (`MEMBER_SCHEMA`), kept column by column as Arrow batches.

    A dict per row (twelve keys, its own lists, a Python float per number) cost about 2 KB: 400 MB at 200k new
    items, the run's memory peak. Rows wait as tuples until `_BATCH_ROWS` of them, then become one Arrow
    batch, converted as `pa.Table.from_pylist` converts each value.
    """

    def __init__(self) -> None:
        self._pending: list[tuple[Any, ...]] = []
        self._batches: list[pa.RecordBatch] = []
        self._rows = 0

    def append(self, row: tuple[Any, ...]) -> None:
        """One row, its values in the order of `MEMBER_SCHEMA`."""
        self._pending.append(row)
        self._rows += 1
        if len(self._pending) >= _BATCH_ROWS:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            columns = zip(*self._pending, strict=True)
            arrays = [pa.array(values, type=kind) for kind, values in zip(MEMBER_SCHEMA.types, columns, strict=True)]
            self._batches.append(pa.RecordBatch.from_arrays(arrays, schema=MEMBER_SCHEMA))
            self._pending = []

    def table(self) -> pa.Table:
        """All rows, as one table of `MEMBER_SCHEMA`."""
        self._flush()
        return pa.Table.from_batches(self._batches, schema=MEMBER_SCHEMA)

    def __len__(self) -> int:
        return self._rows

    def __iter__(self) -> Iterator[dict[str, Any]]:
        """Each row as a dict (for tests and a look at a plan; the store writes `table()`)."""
        return iter(self.table().to_pylist())


_BATCH_ROWS = 16384  # member rows held as Python values before they become an Arrow batch


@dataclass
class StoryPlan:
    """What the run will write about stories."""

    members: MemberRows = field(default_factory=MemberRows)  # rows for story_members (new articles)
    stories: list[dict[str, Any]] = field(default_factory=list)  # full rows for touched stories
    merges: dict[str, str] = field(default_factory=dict)  # old story id -> surviving story id
    reopenings: list[dict[str, Any]] = field(default_factory=list)  # rows for story_reopenings
    created: set[str] = field(default_factory=set)
    touched: set[str] = field(default_factory=set)


def assign_stories(
    items: list[Article],
    context_story: list[str],
    labels: np.ndarray,
    vectors: np.ndarray,
    near_group: np.ndarray,
    features: Any,
    config: Config,
    created_info: dict[str, StoryOrigin],
) -> StoryPlan:
    """Map clusters onto stories: join, create or merge, never silently move an existing member.

    Each new member's row says why it is there: its mean similarity and date agreement with the other
    members (the merge rule), its dates, and the names it shares with most members or lacks.
    """
    from threadpoolctl import threadpool_limits

    from pipeline.arrays import members_by_part
    from pipeline.cluster import member_fit
    from pipeline.headline import HeadlineCandidate, choose_headline
    from pipeline.similarity import collector_paused
    from pipeline.timeline import event_span, rarest_names, reopenings

    plan = StoryPlan()
    n_context = len(context_story)
    story_of = {i: context_story[i] for i in range(n_context)}

    def age_key(story_id: str) -> tuple:
        origin = created_info.get(story_id)
        first_seen, created_run = (origin.first_seen, origin.run_id) if origin else (None, "")
        return (first_seen is None, first_seen or datetime.min, created_run or "", story_id)

    # The founding order of new items: publication time (undated last), then article id.
    founding = [(a.published_at is None, a.published_at or datetime.min, a.article_id) for a in items]
    for part in members_by_part(labels, np.ones(int(labels.max(initial=-1)) + 1, dtype=bool)):
        indices = part.tolist()  # sorted: the open stories' members (below n_context) first
        split = bisect.bisect_left(indices, n_context)
        new_indices = indices[split:]
        stories = sorted({story_of[i] for i in indices[:split]}, key=age_key)
        if not new_indices and len(stories) <= 1:
            continue  # nothing new here: the story stays exactly as it is
        if stories:
            # The cluster stage keeps each stored story whole, so a cluster holding several of them means
            # their average similarity now passes the merge threshold: the oldest id survives, the merge
            # is recorded, and the old ids keep resolving.
            survivor = stories[0]
            for absorbed in stories[1:]:
                plan.merges[absorbed] = survivor
        else:
            founder = min(new_indices, key=founding.__getitem__)
            survivor = story_id_for(items[founder].article_id)
            plan.created.add(survivor)
        story_of.update(dict.fromkeys(indices, survivor))
        plan.touched.add(survivor)

    by_story: dict[str, list[int]] = {}
    for i, story in story_of.items():
        by_story.setdefault(story, []).append(i)
    # Each item's near-duplicate group, named by its first item (-1: a group of one).
    _, first, inverse, size = np.unique(near_group, return_index=True, return_inverse=True, return_counts=True)
    copy_of = np.where(size[inverse] > 1, first[inverse], -1).tolist()
    story_number = {story: number for number, story in enumerate(sorted(by_story))}
    story_labels = np.array([story_number[story_of[i]] for i in range(len(items))], dtype=np.int64)
    joining = np.array(sorted(i for story in plan.touched for i in by_story[story] if i >= n_context), dtype=np.int64)
    fit, agreement = np.full(len(items), np.nan), np.full(len(items), np.nan)
    fit[joining], agreement[joining] = member_fit(features, story_labels, joining, config.cluster)
    evidence = _MemberEvidence(
        items,
        [a.content for a in items],
        fit.tolist(),
        agreement.tolist(),
        copy_of,
        features.dates.item_dates,
        features.dates.sources,
    )
    now = datetime.now()
    newest = max((a.published_at for a in items[n_context:] if a.published_at is not None), default=now)
    # One BLAS thread: a story's products are small, and waking a second thread for each costs more than
    # the product (2.8 s against 0.4 s for the pairwise similarities at 200k items on 2 cores); same results.
    with threadpool_limits(limits=1, user_api="blas"), collector_paused():
        for story in sorted(plan.touched):
            members = sorted(by_story[story])
            member_vectors = vectors[members]
            # The members' mean vector, once for the rows' centroid and the headline's centrality.
            mean = member_vectors[0] if len(members) == 1 else member_vectors.mean(axis=0)
            evidence.rows(plan.members, story, members, member_vectors, mean, n_context)
            for i, last, gap in reopenings(items, members, n_context, config.stories.window_hours, newest):
                plan.reopenings.append(
                    {
                        "story_id": story,
                        "article_id": items[i].article_id,
                        "previous_last_seen": last,
                        "report_published_at": items[i].published_at,
                        "gap_hours": round(gap, 2),
                        "time_evidence": evidence.sources[i],
                        "story_similarity": None if math.isnan(fit[i]) else round(float(fit[i]), 4),
                        "date_agreement": None if math.isnan(agreement[i]) else round(float(agreement[i]), 4),
                    }
                )
            candidates = [
                HeadlineCandidate(
                    items[i].article_id,
                    items[i].title,
                    items[i].text,
                    "title truncated" in items[i].notes,
                    "truncated" in items[i].notes,
                )
                for i in members
            ]
            headline = choose_headline(candidates, member_vectors, mean)
            dates = [items[i].published_at for i in members if items[i].published_at is not None]
            plan.stories.append(
                {
                    "story_id": story,
                    "headline": headline.text,
                    "headline_article_id": headline.article_id,
                    "headline_kind": headline.kind,
                    "headline_reason": headline.reason,
                    "size": len(members),
                    "sources": len({items[i].source for i in members if items[i].source}),
                    "first_seen": min(dates) if dates else None,
                    "last_seen": max(dates) if dates else None,
                    "updated_at": now,
                    "names": rarest_names([evidence.contents[i] for i in members]),
                    **event_span([features.dates.item_dates[i] for i in members], features.dates.mention[members]),
                }
            )
    return plan


@dataclass
class _MemberEvidence:
    """What each new member's row says, per item (lists, so a row costs no numpy call beyond its vector's)."""

    items: list[Article]
    contents: list[str]
    fit: list[float]  # mean similarity with the other members (NaN: alone, or not new)
    agreement: list[float]  # mean date agreement with them
    copy_of: list[int]  # the first item of its near-duplicate group (-1: none)
    item_dates: list[Any]
    sources: list[str]  # which evidence fixed each item's event time (`pipeline.eventdates.TIME_SOURCES`)

    def rows(
        self,
        out: MemberRows,
        story: str,
        members: list[int],
        member_vectors: np.ndarray,
        mean: np.ndarray,
        n_context: int,
    ) -> None:
        """Add to `out` the `story_members` rows of the new ones among `members` (sorted; `member_vectors` their
        vectors, `mean` their mean): centroid and nearest-member similarity, the merge rule's numbers, dates,
        and the names most members give that it shares or lacks."""
        from pipeline.headline import entity_set

        centroid = mean / max(float(np.sqrt(mean @ mean)), 1e-12)  # np.linalg.norm's float32 sums, without its checks
        nearest: list[int | None] = [None] * len(members)
        nearest_similarity: list[float | None] = [None] * len(members)
        contents = [self.contents[i] for i in members]
        # Names shared with at least half of the members, and missing: per distinct text (wire copies).
        names_of: dict[str, tuple[list[str], list[str]]] = dict.fromkeys(contents, ([], []))
        if len(members) > 1:
            pairwise = member_vectors @ member_vectors.T
            np.fill_diagonal(pairwise, -np.inf)
            best = pairwise.argmax(axis=1)
            nearest = best.tolist()
            nearest_similarity = [round(x, 4) for x in pairwise[np.arange(len(members)), best].tolist()]
            found = {content: entity_set(content) for content in names_of}
            counts = Counter(chain.from_iterable(map(found.__getitem__, contents)))
            shared = sorted(name for name, count in counts.items() if count >= len(members) / 2)
            if shared:  # else every member shares and lacks nothing, as `names_of` says already
                names_of = {
                    content: ([n for n in shared if n in names], [n for n in shared if n not in names])
                    for content, names in found.items()
                }
        # Each member's dot product with the centroid as `member_vectors[position] @ centroid` gives it (vecdot:
        # one BLAS dot per row, the same float32 sums; a matrix-vector product adds in another order).
        similarity = np.vecdot(member_vectors, centroid).tolist()
        items, isnan = self.items, math.isnan
        for position, i in enumerate(members):
            if i < n_context:
                continue
            closest, copy_of = nearest[position], self.copy_of[i]
            fit, agreement = self.fit[i], self.agreement[i]
            shared_names, missing_names = names_of[contents[position]]
            out.append(
                (
                    story,
                    items[i].article_id,
                    round(similarity[position], 4),
                    items[members[closest]].article_id if closest is not None else None,
                    nearest_similarity[position],
                    items[copy_of].article_id if copy_of >= 0 else None,
                    None if isnan(fit) else round(fit, 4),
                    None if isnan(agreement) else round(agreement, 4),
                    self.item_dates[i],
                    shared_names,  # shared by the members of one text: the Arrow batch copies them
                    missing_names,
                    self.sources[i],
                )
            )

"""Time as evidence: the one place for how time enters the stories.

- When an item's event happened (`pipeline.eventdates`): the dates its text names, resolved against its
  publication date where it has one, else its publication date. An item without any takes the dates of the
  report most like it when that one is dated (`borrowed_dates`), else it is neutral on time.
- How well two reports' events agree (`date_agreement`): a factor of the pair score, never a gate. A
  follow-up published weeks later that names the event's date agrees with the first reports; a report
  whose only date is its publication date agrees with reports of the same days only.
- In which order reports enter the merge (`merge_steps`): publication order, undated ones last.
- Which stored stories a run re-clusters: the stories still open (last report within
  `stories.window_hours`), and the closed ones that the new items' named dates and names point to
  (`pipeline.store` searches them); a closed story that takes a report is recorded as reopened
  (`reopenings`).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime
from itertools import chain
from typing import TYPE_CHECKING

import numpy as np
from scipy import sparse

from pipeline.config import ClusterConfig
from pipeline.eventdates import DateEvidence, date_sets
from pipeline.records import Article

if TYPE_CHECKING:
    from pipeline.records import ClosedStoryProbes


def merge_steps(hours: np.ndarray, fixed: np.ndarray, step_minutes: float) -> np.ndarray:
    """The merge step of each item: stored items first, then the new ones by publication time in steps of
    `step_minutes` of the clock (0: all at once).

    Steps are slices of the clock, not counts of items, so the steps an item shares do not depend on what
    else arrived (in a firehose, 100 items are three minutes; alone, three months). Undated new items
    share one last step: without a date there is no order to follow.
    """
    steps = np.zeros(len(hours), dtype=np.int64)
    new = np.flatnonzero(fixed < 0)
    dated = new[~np.isnan(hours[new])]
    if step_minutes > 0 and len(dated):
        _, steps[dated] = np.unique(np.floor(hours[dated] * 60.0 / step_minutes), return_inverse=True)
        steps[new[np.isnan(hours[new])]] = steps[dated].max() + 1
    return steps


def borrowed_dates(
    dates: DateEvidence, rows: np.ndarray, cols: np.ndarray, untimed: Callable[[], np.ndarray], bar: float
) -> DateEvidence:
    """The evidence with each item that has no date at all given, as mentions, the dates of its most similar
    dated candidate whose pair passes `bar` on content alone (pairs `rows`-`cols`, scored by `untimed()`,
    called only when some item lacks a date and another has one); its source becomes "neighbour".

    The dated report most like an undated one is the likeliest report of its event. Left neutral on time,
    an undated report agreed with every stage of a saga at once and bridged them: with every third date
    removed, Cuomo's harassment report (Aug 3) and his resignation (Aug 10) became one story through their
    undated reports. Lent dates count as mentions (`DateEvidence.mention`): compared with the reports' own
    dates, never with another report's lent or named-only dates, so two undated reports of one event that
    borrowed from two look-alike events (undated ECB+ reports among dated headlines) are not set apart.
    """
    undated = ~dates.known.any(axis=1)
    if not undated.any() or undated.all():
        return dates
    scores = untimed()
    item, other, score = np.r_[rows, cols], np.r_[cols, rows], np.r_[scores, scores]
    keep = undated[item] & ~undated[other] & (score >= bar)
    if not keep.any():
        return dates
    item, other, score = item[keep], other[keep], score[keep]
    order = np.lexsort((other, -score, item))  # per item: the most similar first, ties to the smaller index
    item, other = item[order], other[order]
    best = np.r_[True, item[1:] != item[:-1]]
    borrower, lender = item[best], other[best]
    source = np.arange(len(undated))
    source[borrower] = lender
    sources, kind = list(dates.sources), dates.kind.copy()
    for i in borrower.tolist():
        sources[i] = "neighbour"
    kind[borrower] = dates.kind.max() + 1 + dates.kind[lender]  # the lender's dates, but as mentions
    return replace(dates.rows(source), mention=dates.mention, sources=sources, kind=kind)


def date_agreement(dates: DateEvidence, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """How well the dates of each pair's events agree, in [0, 1]; 1 where either side has no date, or both
    only mentions (see `DateEvidence`).

    Per channel (days, months, years) how close the events of one item lie to the other's nearest dates,
    in the direction where they lie closer (a follow-up's dates include its event's; the first report's
    event is among them); the factors multiply. Different dates are evidence against one event, not just
    missing evidence.

    Items with the same dates agree alike with every item, and a batch of dated reports has few distinct
    date sets (103 among 200k stream items): when their pairs are fewer than the batch's, each pair of
    date sets is computed once and looked up.
    """
    kind, first = _date_kinds(dates)
    if len(first) ** 2 < len(rows):
        table = _pair_agreement(dates, np.repeat(first, len(first)), np.tile(first, len(first)))
        return table.reshape(len(first), len(first))[kind[rows], kind[cols]]
    return _pair_agreement(dates, rows, cols)


def _pair_agreement(dates: DateEvidence, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    agree = channel_products(dates, dates.cover, dates.mass, rows, cols)
    compared = dates.known[rows] & dates.known[cols] & ~(dates.mention[rows] & dates.mention[cols])[:, None]
    return np.prod(np.where(compared, np.minimum(agree, 1.0), 1.0), axis=1).astype(np.float32)


def _date_kinds(dates: DateEvidence) -> tuple[np.ndarray, np.ndarray]:
    """A number per item for its date evidence, equal for equal evidence; and the first item of each number."""
    _, first, kind = np.unique(dates.kind, return_index=True, return_inverse=True)
    return kind.ravel(), first


def channel_products(
    dates: DateEvidence, cover: sparse.csr_matrix, mass: sparse.csr_matrix, rows: np.ndarray, cols: np.ndarray
) -> np.ndarray:
    """Pairs × channels: the larger of cover[r]·mass[c] and cover[c]·mass[r] per date channel: how far the
    events of one side lie among the dates of the other, in the direction where they do most."""
    per_channel = dates.channel_sums()
    out = np.zeros((len(rows), per_channel.shape[1]), dtype=np.float64)
    for start in range(0, len(rows), 262144):
        r, c = rows[start : start + 262144], cols[start : start + 262144]
        towards = (cover[r].multiply(mass[c]) @ per_channel).toarray()
        back = (cover[c].multiply(mass[r]) @ per_channel).toarray()
        out[start : start + len(r)] = np.maximum(towards, back)
    return out


class DaySpans:
    """The earliest and latest day each story of the merge is about, and whether all its reports are dated.

    Two stories of dated reports whose spans lie more than `reach` days apart cannot merge: every member
    pair's date agreement, and so the stories' mean, is under `merge_similarity` (`reach_days`), and the
    pair score is at most its date agreement. A story with an undated report has no bounds: no date says
    nothing. So skipping such pairs saves the linkage the work and changes no story.
    """

    def __init__(self, low: np.ndarray, high: np.ndarray, bounded: np.ndarray, reach: int) -> None:
        self.low, self.high, self.bounded, self.reach = low, high, bounded, reach

    @classmethod
    def of(cls, dates: DateEvidence, labels: np.ndarray, groups: int, reach: int) -> DaySpans:
        """The spans of the groups of `labels` from their members' dates (`DateEvidence.item_dates`)."""
        dated = dates.known[:, 0] & ~dates.mention  # precise days: the days channel compares them
        low = np.array([min(d).toordinal() if d else 0 for d in dates.item_dates], dtype=np.int64)
        high = np.array([max(d).toordinal() if d else 0 for d in dates.item_dates], dtype=np.int64)
        group_low, group_high = np.full(groups, np.iinfo(np.int64).max), np.full(groups, np.iinfo(np.int64).min)
        np.minimum.at(group_low, labels, np.where(dated, low, group_low.max()))
        np.maximum.at(group_high, labels, np.where(dated, high, group_high.min()))
        bounded = np.ones(groups, dtype=bool)
        np.logical_and.at(bounded, labels, dated)
        return cls(group_low, group_high, bounded, reach)

    def apart(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Per pair of stories: too far apart in time to merge."""
        gap = np.maximum(self.low[b] - self.high[a], self.low[a] - self.high[b])
        return self.bounded[a] & self.bounded[b] & (gap > self.reach)

    def merge(self, survivors: np.ndarray, joined: np.ndarray, bounds: np.ndarray) -> None:
        """The survivor of each set of joined stories (`joined[bounds[k]:bounds[k + 1]]`) spans them all."""
        self.low[survivors] = np.minimum.reduceat(self.low[joined], bounds[:-1])
        self.high[survivors] = np.maximum.reduceat(self.high[joined], bounds[:-1])
        self.bounded[survivors] = np.logical_and.reduceat(self.bounded[joined], bounds[:-1])


# -- which closed stories a run looks at ----------------------------------------------------------------------

NAMES_PER_STORY = 16  # a story is found by this many of its rarest names (`story_names`)
MIN_SHARED_NAMES = 2  # a closed story is a candidate for an item that gives at least this many of them
CANDIDATES_PER_ITEM = 5  # and each item takes its best candidates only: the context grows with the batch


def event_span(item_dates: list[list[date]], undated: np.ndarray) -> dict[str, date | None]:
    """A story's span of days (`stories.event_first`, `event_last`), what the closed-story search compares
    with a new report's dates: from its members' dates; no bounds (None) when a member has no publication
    date, since an undated report agrees with every date."""
    if undated.any() or not all(item_dates):
        return {"event_first": None, "event_last": None}
    return {"event_first": min(min(d) for d in item_dates), "event_last": max(max(d) for d in item_dates)}


def reach_days(config: ClusterConfig) -> int:
    """How far apart (in days) two dates can lie and still agree enough for a join: beyond it the date
    agreement alone keeps the pair score under `merge_similarity`, whatever the texts say."""
    tolerance = max(0.5, config.time_scale_hours / 24)
    return int(math.ceil(tolerance * (1.0 + math.log(1.0 / max(config.merge_similarity, 1e-3)))))


def rarest_names(contents: list[str], limit: int = NAMES_PER_STORY) -> list[str]:
    """The rarest names and numbers that at least half of these texts give (each distinct text once)."""
    from pipeline.headline import entity_set, term_weight

    texts = list(dict.fromkeys(contents))
    if len(texts) == 1:  # a story of one text (a report and its copies): all its names
        common = sorted(entity_set(texts[0]))
    else:
        counts = Counter(chain.from_iterable(map(entity_set, texts)))
        common = sorted(name for name, count in counts.items() if 2 * count >= len(texts))
    weights = dict(zip(common, map(term_weight, common), strict=True))
    order = sorted(common, key=lambda name: (-weights[name], name))  # names are distinct: the order of ties is by name
    return [name for name in order[:limit] if weights[name] > 0]


def closed_story_probes(items: list[Article], config: ClusterConfig) -> ClosedStoryProbes:
    """What the new items look for among the closed stories: their rarest names, and every date they are
    about (publication and named dates; an undated item has none unless its text names full dates)."""
    from pipeline.records import ClosedStoryProbes

    names: list[tuple[int, str]] = []
    days: list[tuple[int, date]] = []
    for position, item in enumerate(items):
        names += [(position, name) for name in rarest_names([item.content])]
        days += [(position, day) for day in date_sets(item.text, item.published_at).dates]
    return ClosedStoryProbes(names, days, reach_days(config), MIN_SHARED_NAMES, CANDIDATES_PER_ITEM)


def reopenings(
    items: list[Article], members: list[int], new_from: int, window_hours: float, reference: datetime
) -> list[tuple[int, datetime, float]]:
    """The new members of one story (positions in `items`, new from `new_from` on) that reopened it: the story
    had had no report for more than `window_hours` when they came. A dated member counts from the story's
    last earlier report; an undated one from `reference` (the batch's newest date, else now) back to the
    stored story's last report. Each as (position, the story's last report before it, the gap in hours)."""

    def hours(later: datetime, earlier: datetime) -> float:
        return (later - earlier).total_seconds() / 3600

    if len(members) == 1 and members[0] >= new_from:  # a new story of one: no earlier report to be long after
        return []
    dated = sorted((items[i].published_at, i) for i in members if items[i].published_at is not None)
    found = [  # a new dated member, long after the story's previous report
        (i, dated[k - 1][0], hours(when, dated[k - 1][0]))
        for k, (when, i) in enumerate(dated)
        if i >= new_from and k > 0 and hours(when, dated[k - 1][0]) > window_hours
    ]
    stored_last = max((when for when, i in dated if i < new_from), default=None)
    if stored_last is not None and hours(reference, stored_last) > window_hours:
        undated = [i for i in members if i >= new_from and items[i].published_at is None]
        found += [(i, stored_last, hours(reference, stored_last)) for i in undated]
    return sorted(found)

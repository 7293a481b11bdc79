"""Event dates: when did the reported event happen, read from the text itself.

A follow-up published twelve days after a shooting ("Justin Malone was killed Nov. 10") reports the
same event as the first report, and a report of another shooting published the same day does not. So
each item carries the dates its event may have, not only its publication date: the dates its body names,
resolved against the publication date (weekday names, "yesterday", "June 3"), looking back at most
`LOOKBACK_DAYS` (a date further back is background, not the event). Two reports agree when some date of
one is close to the other's (`DateEvidence`). A full date with its year ("May 25, 2016") needs no
publication date, so undated items carry dates too, as mentions, and the year they name most.

Plain regular expressions over English date forms: fast enough for 200k headlines a run, deterministic,
and tested by property tests (`tests/test_eventdates.py`). Anything unresolvable is ignored.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple

import numpy as np
from scipy import sparse

LOOKBACK_DAYS = 366
_MONTHS = {
    name: number
    for number, names in enumerate(
        [
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ],
        start=1,
    )
    for name in names
}
_WEEKDAYS = {"monday": 0, "tuesday": 1, "wednesday": 2, "thursday": 3, "friday": 4, "saturday": 5, "sunday": 6}
# "last week": a follow-up's pointer back to its event ("the girl killed by a stray bullet last week"), a week back.
_RELATIVE = {"today": 0, "tonight": 0, "yesterday": 1, "last night": 1, "last week": 7}
_MONTH_NAMES = "|".join(sorted(_MONTHS, key=len, reverse=True))
# Month and weekday names as people abbreviate them ("Tues", "Sept"): what a date line in a headline is made of.
CALENDAR_WORDS = frozenset({*_MONTHS, *_WEEKDAYS, *(day[:3] for day in _WEEKDAYS), "tues", "thurs"})
_DATE = re.compile(
    rf"\b(?:(?P<month>{_MONTH_NAMES})\.?\s+(?P<day>[0-3]?\d)(?:st|nd|rd|th)?\b(?:,?\s+(?P<year>(?:19|20)\d\d)\b)?"
    rf"|(?P<day2>[0-3]?\d)(?:st|nd|rd|th)?\s+(?:of\s+)?(?P<month2>{_MONTH_NAMES})\.?(?:,?\s+(?P<year2>(?:19|20)\d\d)\b)?"
    r"|(?P<iso>(?:19|20)\d\d-[01]\d-[0-3]\d)"
    rf"|(?P<weekday>{'|'.join(_WEEKDAYS)})"
    rf"|(?P<relative>{'|'.join(_RELATIVE)})"
    r")\b",
    re.IGNORECASE,
)


def mentioned_dates(text: str, published: date | None) -> list[date]:
    """Every date the text names that can be resolved, in reading order.

    Without `published`, only dates that carry their year resolve. A weekday is the latest such day on
    or before publication; a month and day without year is the latest such date on or before it (a
    day's slack for time zones).
    """
    found: list[date] = []
    for match in _DATE.finditer(text):
        groups = match.groupdict()
        resolved: date | None = None
        try:
            if groups["iso"]:
                resolved = date.fromisoformat(groups["iso"])
            elif groups["month"] or groups["month2"]:
                month = _MONTHS[(groups["month"] or groups["month2"]).lower()]
                if groups["month"] and match.group("month").lower() == "may" and not match.group(0)[0].isupper():
                    continue  # "may 5" in lower case is the verb
                day = int(groups["day"] or groups["day2"])
                year = groups["year"] or groups["year2"]
                if year:
                    resolved = date(int(year), month, day)
                elif published is not None:
                    resolved = date(published.year, month, day)
                    if resolved > published + timedelta(days=1):
                        resolved = date(published.year - 1, month, day)
            elif published is not None and groups["weekday"]:
                if not match.group(0)[0].isupper():
                    continue
                back = (published.weekday() - _WEEKDAYS[groups["weekday"].lower()]) % 7
                resolved = published - timedelta(days=back)
            elif published is not None and groups["relative"]:
                resolved = published - timedelta(days=_RELATIVE[" ".join(groups["relative"].lower().split())])
        except ValueError:  # "Feb 30": not a date
            continue
        if resolved is not None:
            found.append(resolved)
    return found


# Which evidence fixed an item's event time, for `explain` and the store; "neighbour": it had none, and took the
# dates of the dated report most like it (`pipeline.timeline.borrowed_dates`).
TIME_SOURCES = ("publication", "text", "neighbour", "none")


class ItemDates(NamedTuple):
    """When an item's event may have happened, and from what evidence.

    `dates`: every date the item is about (its publication date and the dates its body names around it; for
    an undated item the full dates its body names). `event`: where its event lies among them: the dates
    the body names when it names any, else the publication date. A follow-up published three weeks on
    that names the shooting's date ("wounded in the Nov. 2 shooting") has its event on Nov. 2, whatever
    its own date. `source`: "text" (named dates), "publication" (the publication date alone) or "none"
    (no date at all: neutral on time). `precise`: the dates are resolved against a publication date.
    """

    dates: list[date]
    event: list[date]
    source: str
    precise: bool


def date_sets(body: str, published: datetime | None) -> ItemDates:
    """The dates an item's event may have: its publication date and the dates its body names within
    `LOOKBACK_DAYS` before it (precise); for an undated item the full dates its body names (not precise:
    they are mentions, not necessarily the event).

    Only the body is read: headlines name days ahead ("Fed to meet Wednesday") as often as days past.
    """
    if published is None:
        named = sorted(set(mentioned_dates(body, None)))
        return ItemDates(named, named, "text" if named else "none", False)
    day = published.date()
    named = []
    if body:
        low, high = day - timedelta(days=LOOKBACK_DAYS), day + timedelta(days=1)
        named = sorted({d for d in mentioned_dates(body, day) if low <= d <= high})
    if not named:  # a bare headline, or a body that names no date: its publication date (one list for both)
        only = [day]
        return ItemDates(only, only, "publication", True)
    return ItemDates(sorted({day, *named}), named, "text", True)


CHANNELS = ("days", "months", "years")


@dataclass
class DateEvidence:
    """The dates of each item's event in three channels, as sparse matrices over calendar bins, so that
    the agreement of two items, and the mean agreement of two groups, are dot products of sums.

    Channels: days (precise dates: publication and what the body names around it), months (every dated
    item) and years (the publication year, or for an undated item the year its text names most). Their
    bins sit side by side in one matrix; `channel[c]` says which channel column c belongs to.
    `cover[i]` is how close each bin is to item i's nearest date in that channel (the kernel: 1 within the
    tolerance, then decaying), `mass[i]` spreads 1 over item i's own dates in each channel, `known[i, k]`
    says whether item i has a date in channel k, and `mention[i]` whether its dates are only mentions in
    an undated text. Two mentions are not compared (a text names background dates as readily as its
    event's); a mention is compared with a publication date.
    """

    cover: sparse.csr_matrix
    mass: sparse.csr_matrix
    channel: np.ndarray
    known: np.ndarray
    mention: np.ndarray
    item_dates: list[list[date]]  # each item's dates (`ItemDates.dates`), as read: for the member rows
    sources: list[str]  # each item's time evidence (`TIME_SOURCES`)
    kind: np.ndarray  # equal for items of equal evidence (pairs of kinds are computed once)

    def channel_sums(self) -> sparse.csr_matrix:
        """Columns × channels: sums a row's values per channel."""
        columns = len(self.channel)
        return sparse.csr_matrix(
            (np.ones(columns, dtype=np.float32), (np.arange(columns), self.channel)), shape=(columns, len(CHANNELS))
        )

    def rows(self, items: np.ndarray) -> DateEvidence:
        """The evidence of these items (positions), in this order: the same rows, and kinds (numbered in
        order of first appearance) that stay so when `items` first lists each in order."""
        listed = items.tolist()
        return DateEvidence(
            cover=self.cover[items],
            mass=self.mass[items],
            channel=self.channel,
            known=self.known[items],
            mention=self.mention[items],
            item_dates=[self.item_dates[i] for i in listed],
            sources=[self.sources[i] for i in listed],
            kind=self.kind[items],
        )

    def only(self, names: tuple[str, ...]) -> DateEvidence:
        """The same evidence with the other channels unknown (for tests and explanations)."""
        keep = np.array([name in names for name in CHANNELS])
        return replace(self, known=self.known & keep[None, :])


def main_year(text: str) -> int | None:
    """The year a text names most often (the latest on a tie), None when it names none."""
    years = Counter(int(year) for year in _YEAR.findall(text))
    if not years:
        return None
    return max(years, key=lambda year: (years[year], year))


# A year: not part of an amount, a phone number ("(313) 222 - 2027") or a street address ("the 2000 block of
# Harrison Street", "1915 Birch St."), which police reports give as often as dates.
_STREET = r"(?:St|Street|Ave|Avenue|Rd|Road|Dr|Drive|Blvd|Boulevard|Ln|Lane|Way|Ct|Court|Pl|Place|Hwy|Highway)"
_YEAR = re.compile(
    r"(?<![\d.,$£€-])(?<!\d\d\d - )(?<!\d\d\d-)\b((?:19|20)\d\d)\b(?![\d.,%-]\d)"
    rf"(?!\s+block\b)(?!\s+(?:[A-Z][\w'’-]*\s+){{1,3}}{_STREET}\b)"
)


def date_evidence(
    bodies: list[str], published: list[datetime | None], tolerance_days: float, titles: list[str] | None = None
) -> DateEvidence:
    """Per item date sets as `DateEvidence`: days with `tolerance_days`, months and years with one each.

    `cover` spreads over all of an item's dates, `mass` over its event dates (`ItemDates.event`): two
    reports agree when the event of each lies near some date the other is about. A follow-up weeks later
    naming the event's date agrees with the first reports; two reports of two days each naming only
    their own day do not. A tolerance of 0 turns dates off: no item counts as dated, every pair agrees.
    """
    n = len(bodies)
    if tolerance_days <= 0:
        bodies, published = [""] * n, [None] * n
    titles = titles or [""] * n
    # An item's evidence depends on its body and publication day only (and, undated, on its title's years):
    # each distinct one is read once, then each item takes its rows. A stream repeats its texts and has a
    # few hundred days, so 200k items hold a few thousand distinct ones (5 s read one by one).
    number: dict[tuple, int] = {}
    rows = np.fromiter(
        (
            number.setdefault((body, None, title) if when is None else (body, when.date(), None), len(number))
            for body, title, when in zip(bodies, titles, published, strict=True)
        ),
        dtype=np.int64,
        count=n,
    )
    if len(number) == n:
        return _date_evidence(bodies, published, tolerance_days, titles)
    first = np.unique(rows, return_index=True)[1].tolist()  # the first item of each distinct key, in order
    distinct = _date_evidence(
        [bodies[i] for i in first], [published[i] for i in first], tolerance_days, [titles[i] for i in first]
    )
    return distinct.rows(rows)


def _date_evidence(
    bodies: list[str], published: list[datetime | None], tolerance_days: float, titles: list[str]
) -> DateEvidence:
    """`date_evidence` read item by item: what the distinct fast path must equal (`tests/test_fastpaths.py`)."""
    sets = [date_sets(body, when) for body, when in zip(bodies, published, strict=True)]
    years = [
        when.year if when is not None else main_year(f"{title}\n{body}")
        for title, body, when in zip(titles, bodies, published, strict=True)
    ]

    # Bins of each item's dates (cover) and of its event (mass); one list where they are the same dates.
    def bins(convert: Any, precise_only: bool) -> tuple[list[list[int]], list[list[int]]]:
        cover: list[list[int]] = []
        mass: list[list[int]] = []
        for item in sets:
            if precise_only and not item.precise:
                cover.append([])
                mass.append(cover[-1])
                continue
            cover.append([convert(d) for d in item.dates])
            mass.append(cover[-1] if item.event is item.dates else [convert(d) for d in item.event])
        return cover, mass

    year_bins = [[] if year is None or tolerance_days <= 0 else [year] for year in years]
    channels = [
        (*bins(date.toordinal, True), max(0.5, tolerance_days)),
        (*bins(lambda d: d.year * 12 + d.month - 1, False), 1.0),
        (year_bins, year_bins, 1.0),
    ]
    covers, masses, owners, known = [], [], [], []
    for number, (cover_bins, mass_bins, tolerance) in enumerate(channels):
        cover, mass = _channel(cover_bins, mass_bins, tolerance)
        covers.append(cover)
        masses.append(mass)
        owners.append(np.full(cover.shape[1], number))
        known.append(np.array([bool(item) for item in mass_bins], dtype=bool))
    sources = [
        "text" if item.source == "none" and year is not None else item.source
        for item, year in zip(sets, years, strict=True)
    ]
    keys = [
        (tuple(item.dates), tuple(item.event), item.precise, year, when is None)
        for item, year, when in zip(sets, years, published, strict=True)
    ]
    number: dict[tuple, int] = {}
    return DateEvidence(
        cover=sparse.hstack(covers).tocsr(),
        mass=sparse.hstack(masses).tocsr(),
        channel=np.concatenate(owners),
        known=np.column_stack(known),
        mention=np.array([when is None for when in published], dtype=bool),
        item_dates=[item.dates for item in sets],
        sources=sources,
        kind=np.array([number.setdefault(key, len(number)) for key in keys], dtype=np.int64),
    )


def kernel(offset: np.ndarray, tolerance: float) -> np.ndarray:
    """Closeness of two dates `offset` bins apart: 1 up to `tolerance`, then halving about every 0.7 tolerance."""
    excess = np.maximum(0.0, np.abs(offset) - tolerance)
    return np.exp(-excess / tolerance)


def _channel(
    cover_bins: list[list[int]], mass_bins: list[list[int]], tolerance: float
) -> tuple[sparse.csr_matrix, sparse.csr_matrix]:
    """`cover` (over each item's `cover_bins`) and `mass` (over its `mass_bins`) of one channel (see
    `DateEvidence`), all items at once, on one calendar of bins."""
    n = len(cover_bins)
    radius = int(np.ceil(tolerance * (1 + _CUTOFF)))
    offsets = np.arange(-radius, radius + 1)
    weights = kernel(offsets, tolerance).astype(np.float32)
    same = all(c is m for c, m in zip(cover_bins, mass_bins, strict=True))
    flat = [b for item in cover_bins for b in item] + ([] if same else [b for item in mass_bins for b in item])
    values = np.array(flat, dtype=np.int64)
    if not len(values):
        empty = sparse.csr_matrix((n, 1), dtype=np.float32)
        return empty, empty.copy()
    base = int(values.min()) - radius
    width = int(values.max()) - base + radius + 1

    def distinct(bins: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
        rows = np.repeat(np.arange(n), [len(item) for item in bins])
        flat = np.array([b for item in bins for b in item], dtype=np.int64)
        pairs = np.unique(rows * width + (flat - base))  # each item's distinct dates
        return pairs // width, pairs % width

    rows, columns = distinct(mass_bins)
    counts = np.bincount(rows, minlength=n)
    mass = sparse.csr_matrix(((1.0 / counts[rows]).astype(np.float32), (rows, columns)), shape=(n, width))
    # Cover: every date spread over its kernel; where two dates of an item overlap, the closer one counts.
    if not same:
        rows, columns = distinct(cover_bins)
    spread_rows = np.repeat(rows, len(offsets))
    spread_cols = (columns[:, None] + offsets[None, :]).ravel()
    spread_vals = np.tile(weights, len(rows))
    # Sorted by item and bin (already nearly so: one item's dates follow each other), the closest per bin.
    keys = spread_rows * width + spread_cols
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    first = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    closest = np.maximum.reduceat(spread_vals[order], first)
    cover = sparse.csr_matrix(
        (closest, (keys[first] // width, keys[first] % width)), shape=(n, width), dtype=np.float32
    )
    return cover, mass


_CUTOFF = 4.0  # the kernel is cut this many tolerances beyond the tolerance (weight below 0.02)

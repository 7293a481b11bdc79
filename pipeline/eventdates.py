"""Event dates: when did the reported event happen, read from the text itself.

A follow-up published twelve days after a shooting ("Justin Malone was killed Nov. 10") reports the
same event as the first report, and a report of another shooting published the same day does not. So
each item carries the date of its event, not only of its publication: the earliest date its text
mentions, resolved against the publication date where there is one (weekday names, "yesterday"),
looking back at most `LOOKBACK_DAYS` (a date further back is background, not the event). A full date
with its year ("May 25, 2016") needs no publication date, so undated items get an event date too.

Plain regular expressions over English date forms: fast enough for 200k headlines a run, deterministic,
and tested by property tests (`tests/test_eventdates.py`). Anything unresolvable is ignored.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np
from scipy import sparse

LOOKBACK_DAYS = 31
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
_RELATIVE = {"today": 0, "tonight": 0, "yesterday": 1, "last night": 1}
_MONTH_NAMES = "|".join(sorted(_MONTHS, key=len, reverse=True))
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


def date_sets(body: str, published: datetime | None) -> tuple[list[date], bool]:
    """The dates an item's event may have: its publication date and the dates its body names within
    `LOOKBACK_DAYS` before it (precise: True); for an undated item the full dates its body names (precise:
    False, they are mentions, not necessarily the event).

    Only the body is read: headlines name days ahead ("Fed to meet Wednesday") as often as days past.
    """
    if published is None:
        return sorted(set(mentioned_dates(body, None))), False
    day = published.date()
    low, high = day - timedelta(days=LOOKBACK_DAYS), day + timedelta(days=1)
    return sorted({day, *(d for d in mentioned_dates(body, day) if low <= d <= high)}), True


@dataclass
class DateChannel:
    """Dates as two sparse matrices over calendar bins (days or months), so that the agreement of two
    items, and the mean agreement of two groups, are dot products of sums.

    `cover[i]` is how close each bin is to item i's nearest date (the kernel: 1 within the tolerance, then
    decaying), `mass[i]` spreads 1 over item i's own dates, `known[i]` says whether item i has any, and
    `mention[i]` whether they are only mentions in an undated text. Two mentions are not compared (a text
    names background dates as readily as its event's); a mention is compared with a publication date.
    """

    cover: sparse.csr_matrix
    mass: sparse.csr_matrix
    known: np.ndarray
    mention: np.ndarray

    def mentions_only(self) -> DateChannel:
        """The same channel restricted to the items whose dates are mentions (the others emptied)."""
        keep = sparse.diags(self.mention.astype(np.float32))
        return DateChannel(
            (keep @ self.cover).tocsr(), (keep @ self.mass).tocsr(), self.known & self.mention, self.mention
        )


@dataclass
class DateEvidence:
    """Days (precise dates: publication and what the body names around it), months (every dated item) and
    years (the publication year, or for an undated item the year its text names most)."""

    days: DateChannel
    months: DateChannel
    years: DateChannel

    @property
    def channels(self) -> tuple[DateChannel, ...]:
        return (self.days, self.months, self.years)


def main_year(text: str) -> int | None:
    """The year a text names most often (the latest on a tie), None when it names none."""
    years = Counter(int(year) for year in _YEAR.findall(text))
    if not years:
        return None
    return max(years, key=lambda year: (years[year], year))


_YEAR = re.compile(r"(?<![\d.,$£€-])\b((?:19|20)\d\d)\b(?![\d.,%-]\d)")


def date_evidence(
    bodies: list[str], published: list[datetime | None], tolerance_days: float, titles: list[str] | None = None
) -> DateEvidence:
    """Per item date sets as `DateChannel`s: days with `tolerance_days`, months with one month.

    A tolerance of 0 turns dates off: no item counts as dated, every pair agrees.
    """
    if tolerance_days <= 0:
        bodies, published = [""] * len(bodies), [None] * len(published)
    sets = [date_sets(body, when) for body, when in zip(bodies, published, strict=True)]
    day_bins = [[d.toordinal() for d in dates] if precise else [] for dates, precise in sets]
    month_bins = [[d.year * 12 + d.month - 1 for d in dates] for dates, _ in sets]
    titles = titles or [""] * len(bodies)
    year_bins = []
    for title, body, when in zip(titles, bodies, published, strict=True):
        year = when.year if when is not None else main_year(f"{title}\n{body}")
        year_bins.append([] if year is None or tolerance_days <= 0 else [year])
    undated = np.array([when is None for when in published])
    return DateEvidence(
        days=_channel(day_bins, max(0.5, tolerance_days), undated),
        months=_channel(month_bins, 1.0, undated),
        years=_channel(year_bins, 1.0, undated),
    )


def kernel(offset: np.ndarray, tolerance: float) -> np.ndarray:
    """Closeness of two dates `offset` bins apart: 1 up to `tolerance`, then halving about every 0.7 tolerance."""
    excess = np.maximum(0.0, np.abs(offset) - tolerance)
    return np.exp(-excess / tolerance)


def _channel(bins: list[list[int]], tolerance: float, mention: np.ndarray) -> DateChannel:
    n = len(bins)
    radius = int(np.ceil(tolerance * (1 + _CUTOFF)))
    offsets = np.arange(-radius, radius + 1)
    weights = kernel(offsets, tolerance)
    flat = [b for item in bins for b in item]
    base = min(flat, default=0) - radius
    width = max(flat, default=0) - base + radius + 1
    cover_rows, cover_cols, cover_vals, mass_rows, mass_cols, mass_vals = [], [], [], [], [], []
    for row, item in enumerate(bins):
        if not item:
            continue
        distinct = np.unique(np.asarray(item) - base)
        columns = (distinct[:, None] + offsets[None, :]).ravel()
        values = np.tile(weights, len(distinct))
        order = np.lexsort((-values, columns))
        columns, values = columns[order], values[order]
        first = np.r_[True, columns[1:] != columns[:-1]]  # per bin the closest date's weight
        cover_rows.append(np.full(int(first.sum()), row))
        cover_cols.append(columns[first])
        cover_vals.append(values[first])
        mass_rows.append(np.full(len(distinct), row))
        mass_cols.append(distinct)
        mass_vals.append(np.full(len(distinct), 1.0 / len(distinct)))

    def matrix(rows: list, cols: list, vals: list) -> sparse.csr_matrix:
        if not rows:
            return sparse.csr_matrix((n, max(1, width)), dtype=np.float32)
        return sparse.csr_matrix(
            (np.concatenate(vals).astype(np.float32), (np.concatenate(rows), np.concatenate(cols))),
            shape=(n, width),
        )

    return DateChannel(
        cover=matrix(cover_rows, cover_cols, cover_vals),
        mass=matrix(mass_rows, mass_cols, mass_vals),
        known=np.array([bool(item) for item in bins], dtype=bool),
        mention=np.asarray(mention, dtype=bool),
    )


_CUTOFF = 4.0  # the kernel is cut this many tolerances beyond the tolerance (weight below 0.02)


def event_date(text: str, published: datetime | None) -> date | None:
    """The earliest date an item's event may have (see `date_sets`), None when it has none."""
    dates, _ = date_sets(text, published)
    return dates[0] if dates else None

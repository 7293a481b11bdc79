"""Time as evidence: the one place for how time enters the stories.

- When an item's event happened (`pipeline.eventdates`): the dates its text names, resolved against its
  publication date where it has one, else its publication date; an item without any is neutral on time.
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

import numpy as np
from scipy import sparse

from pipeline.eventdates import DateEvidence


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


def date_agreement(dates: DateEvidence, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """How well the dates of each pair's events agree, in [0, 1]; 1 where either side has no date, or both
    only mentions (see `DateEvidence`).

    Per channel (days, months, years) the closeness of one item's dates to the other's nearest, both
    ways; the factors multiply. Different dates are evidence against one event, not just missing evidence.

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

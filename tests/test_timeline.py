"""Time as evidence (`pipeline.timeline`): which joins reopened a story, how far the closed-story search
reaches, and which names a story is found by."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from pipeline.config import ClusterConfig
from pipeline.eventdates import date_evidence
from pipeline.records import Article
from pipeline.timeline import date_agreement, rarest_names, reach_days, reopenings

START = datetime(2016, 1, 1, 12)


def article(number: int, hours: float | None) -> Article:
    when = None if hours is None else START + timedelta(hours=hours)
    return Article(f"a{number}", "", "", "", "", None, None, when, "", number)


def brute_force(items: list[Article], members: list[int], new_from: int, window: float, reference: datetime) -> list:
    """The definition, pair by pair: a new member reopened its story when the story's latest report before it
    (for an undated member: the stored story's latest, counted back from `reference`) is over `window` hours old."""
    found = []
    for i in members:
        if i < new_from:
            continue
        when = items[i].published_at
        if when is None:
            earlier = [items[j].published_at for j in members if j < new_from and items[j].published_at]
        else:
            earlier = [
                items[j].published_at
                for j in members
                if j != i and items[j].published_at and (items[j].published_at, j) < (when, i)
            ]
        if earlier and ((when or reference) - max(earlier)).total_seconds() / 3600 > window:
            found.append((i, max(earlier), ((when or reference) - max(earlier)).total_seconds() / 3600))
    return sorted(found)


@given(
    st.lists(st.one_of(st.none(), st.integers(0, 2000)), min_size=1, max_size=12),
    st.integers(0, 12),
    st.sampled_from([24.0, 168.0]),
)
def test_reopenings_are_the_joins_after_a_gap_longer_than_the_window(hours: list, new_from: int, window: float) -> None:
    items = [article(k, h) for k, h in enumerate(hours)]
    members = list(range(len(items)))
    reference = START + timedelta(hours=2100)
    assert reopenings(items, members, new_from, window, reference) == brute_force(
        items, members, new_from, window, reference
    )


def test_the_search_reaches_as_far_as_dates_can_still_agree_enough_to_join() -> None:
    config = ClusterConfig()
    reach = reach_days(config)
    for gap, agrees in ((reach - 1, True), (reach + 1, False)):
        evidence = date_evidence(["", ""], [START, START + timedelta(days=gap)], config.time_scale_hours / 24)
        agreement = float(date_agreement(evidence, np.array([0]), np.array([1]))[0])
        assert (agreement >= config.merge_similarity) is agrees, (gap, agreement)


def test_a_story_is_found_by_the_rarest_names_most_of_its_reports_give() -> None:
    reports = [
        "Police said Justin Malone died at the Burbank Marriott on Thursday.",
        "The coroner said Justin Malone was killed at the Marriott in Burbank.",
        "A GoFundMe page for Malone was set up by Andy Nguyen.",
    ]
    names = rarest_names(reports)
    assert {"malone", "burbank", "marriott"} <= set(names)
    assert "nguyen" not in names  # one report of three names him
    assert "thursday" not in names  # capitalised, but not a name: it weighs little and only one report has it


def test_an_undated_report_takes_as_mentions_the_dates_of_the_dated_report_most_like_it() -> None:
    from pipeline.timeline import borrowed_dates

    day = START
    published = [day, day + timedelta(days=7), None, None, None, None]
    dates = date_evidence([""] * 6, published, 2.0)
    # Candidate pairs and their scores on content alone: 2 is most like 1 of the dated, 3 like 4 (undated) and
    # then 0, 5 like nothing that passes; 4's only dated candidate is 3's lender's week, below the bar.
    rows = np.array([0, 1, 0, 3, 0, 5, 4])
    cols = np.array([2, 2, 3, 4, 5, 1, 1])
    scores = np.array([0.5, 0.8, 0.6, 0.9, 0.2, 0.3, 0.1])
    calls = []
    lent = borrowed_dates(dates, rows, cols, lambda: calls.append(1) or scores, bar=0.33)
    assert lent.sources[:2] == dates.sources[:2] and lent.sources[2:] == ["neighbour", "neighbour", "none", "none"]
    assert lent.item_dates[2] == dates.item_dates[1] and lent.item_dates[3] == dates.item_dates[0]
    assert not lent.known[4:].any() and lent.mention.tolist() == dates.mention.tolist()
    # A borrower agrees with its lender and, as the lender does, not with the other week; two borrowers are
    # never compared (mentions), however far apart their lenders.
    agreement = date_agreement(lent, np.array([2, 2, 1, 2]), np.array([1, 0, 0, 3]))
    assert agreement[0] == 1.0 and agreement[1] == agreement[2] < 1.0 and agreement[3] == 1.0
    assert calls == [1]
    # Nothing to lend or nobody to lend to: the same evidence, and the scores never computed.
    for everyone in ([day, day], [None, None]):
        alone = date_evidence(["", ""], everyone, 2.0)
        assert borrowed_dates(alone, np.array([0]), np.array([1]), lambda: calls.append(1) or np.ones(1), 0.33) is alone
    assert calls == [1]

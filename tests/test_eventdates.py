"""Event dates read from text: property tests of the parser and exactness of the date agreement."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import sparse

from pipeline.cluster.groupsums import GroupSums, group_date_agreement
from pipeline.eventdates import LOOKBACK_DAYS, DateEvidence, date_evidence, date_sets, main_year, mentioned_dates
from pipeline.similarity import ItemFeatures, date_agreement

MONTHS = ["January", "Feb.", "March", "Apr", "May", "June", "Jul.", "August", "Sept.", "October", "Nov.", "Dec."]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


@given(st.text(max_size=300), st.one_of(st.none(), st.dates(date(1990, 1, 1), date(2030, 12, 31))))
def test_any_text_parses_without_error_and_only_to_real_dates(text: str, published: date | None) -> None:
    for found in mentioned_dates(text, published):
        assert isinstance(found, date)


@given(st.dates(date(1990, 1, 1), date(2030, 12, 31)))
def test_a_full_date_reads_back_as_itself(day: date) -> None:
    month = MONTHS[day.month - 1]
    assert mentioned_dates(f"It happened on {month} {day.day}, {day.year} at noon.", None) == [day]
    assert mentioned_dates(f"On {day.day} {month} {day.year} police said", None) == [day]


@given(st.dates(date(1990, 1, 8), date(2030, 12, 31)), st.sampled_from(WEEKDAYS))
def test_a_weekday_is_the_latest_such_day_up_to_publication(published: date, weekday: str) -> None:
    (found,) = mentioned_dates(f"The shooting happened {weekday} night.", published)
    assert published - timedelta(days=6) <= found <= published
    assert found.weekday() == WEEKDAYS.index(weekday)


@given(st.dates(date(1990, 1, 8), date(2030, 12, 31)), st.integers(0, 400))
def test_a_month_and_day_without_year_is_never_after_publication(published: date, back: int) -> None:
    day = published - timedelta(days=back)
    assume((day.month, day.day) != (2, 29))
    (found,) = mentioned_dates(f"police said on {MONTHS[day.month - 1]} {day.day}", published)
    assert found <= published + timedelta(days=1)
    assert (found.month, found.day) == (day.month, day.day)


def test_the_verb_may_and_lower_case_weekdays_are_not_dates() -> None:
    assert mentioned_dates("the suspect may 5 times have fired", date(2016, 6, 1)) == []
    assert mentioned_dates("a friday-night special", date(2016, 6, 1)) == []


def test_date_sets_keep_recent_mentions_and_drop_background() -> None:
    published = datetime(2016, 11, 23, 12)
    found = date_sets("Malone was killed Nov. 10 ... a similar case on March 3, 2014.", published)
    assert found.precise and found.dates == [date(2016, 11, 10), date(2016, 11, 23)]
    assert found.event == [date(2016, 11, 10)] and found.source == "text"  # the event is what the text names
    assert all(published.date() - timedelta(days=LOOKBACK_DAYS) <= d for d in found.dates)
    undated = date_sets("Filed on March 3, 2014 and on May 2, 2015.", None)
    assert not undated.precise and undated.dates == [date(2014, 3, 3), date(2015, 5, 2)]
    assert date_sets("", published).source == "publication" and date_sets("No date here.", None).source == "none"


def test_a_follow_up_naming_its_event_date_agrees_whatever_its_publication_gap() -> None:
    first = datetime(2016, 6, 4, 12)
    bodies = [
        "Two men were shot dead in Labadieville on Friday night, police said.",
        "The father charged in the June 3 shooting in Labadieville heads to trial on Monday.",
        "A man was shot on Tuesday in Gary, police said.",
    ]
    published = [first, first + timedelta(days=95), first + timedelta(days=95)]
    evidence = date_evidence(bodies, published, 2.0)
    agreement = date_agreement(evidence, np.array([0, 0]), np.array([1, 2]))
    assert agreement[0] == 1.0  # 95 days later, naming the event's date: no evidence against
    assert agreement[1] < 0.05  # the same gap, naming only its own days: evidence against
    assert evidence.sources == ["text", "text", "text"]


def test_main_year_is_the_most_named_year() -> None:
    assert main_year("In 2008 ... the 2008 season ... since 1996") == 2008
    assert main_year("scored 2,014 points and $1999") is None


def test_addresses_and_phone_numbers_are_no_years() -> None:
    """gvc-val with every third date removed from the first: an undated report's street address or
    newsroom phone number gave it a year its event is not in, and it stayed an orphan."""
    assert main_year("It happened on the 2000 block of Harrison Street on Tuesday.") is None
    assert main_year("Ahmad Antoine, 17, of 1915 Birch St., was charged.") is None
    assert main_year("May 25, 2016. bwilliams@detroitnews.com (313) 222 - 2027") == 2016
    assert main_year("call 555-2014 or visit 2010 Main Street; in 2012 he moved") == 2012


def one_way(dates: DateEvidence, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Per pair, how far the events of `cols` lie among the dates of `rows` (1 where not compared)."""
    towards = np.asarray((dates.cover[rows].multiply(dates.mass[cols]) @ dates.channel_sums()).todense())
    compared = dates.known[rows] & dates.known[cols] & ~(dates.mention[rows] & dates.mention[cols])[:, None]
    return np.prod(np.where(compared, np.minimum(towards, 1.0), 1.0), axis=1)


def test_group_date_agreement_is_the_exact_mean_over_member_pairs_per_channel_in_its_better_direction() -> None:
    """Per channel, a group pair agrees as the mean over its member pairs, in the direction (one group's events
    among the other's dates) where it agrees more; for two groups of one that is the pair's own agreement."""
    rng = np.random.default_rng(1)
    n, groups = 40, 8
    published = [
        None if rng.random() < 0.3 else datetime(2015, 1, 1) + timedelta(days=int(rng.integers(0, 60)))
        for _ in range(n)
    ]
    bodies = [
        ("On Monday " if rng.random() < 0.5 else "")
        + (f"March {rng.integers(1, 28)}, 2015 " if rng.random() < 0.5 else "")
        + ("in 2013 " if rng.random() < 0.3 else "")
        for _ in range(n)
    ]
    full = date_evidence(bodies, published, 2.0)
    labels = rng.integers(0, groups, n)
    left, right = np.triu_indices(groups, 1)
    for name in ("days", "months", "years"):
        dates = full.only((name,))
        features = ItemFeatures(
            np.eye(n, 5, dtype=np.float32),
            sparse.csr_matrix((n, 3), dtype=np.float32),
            sparse.csr_matrix((n, 3), dtype=np.float32),
            np.ones(n, dtype=np.float32),
            np.zeros(n),
            dates,
        )
        sums = GroupSums.of(features, labels)
        expected = [
            max(one_way(dates, np.repeat(a, len(b)), np.tile(b, len(a))).mean(), one_way(dates, np.repeat(b, len(a)), np.tile(a, len(b))).mean())
            for a, b in (
                (np.flatnonzero(labels == g), np.flatnonzero(labels == h)) for g, h in zip(left, right, strict=True)
            )
        ]  # fmt: skip
        assert np.allclose(group_date_agreement(sums, left, right), expected, atol=1e-5), name
        dense = group_date_agreement(sums, np.arange(groups), np.arange(groups), dense=True)
        assert np.allclose(dense[left, right], expected, atol=1e-5), name
        singles = GroupSums.items(features)
        pairs = np.triu_indices(n, 1)
        assert np.allclose(group_date_agreement(singles, *pairs), date_agreement(dates, *pairs), atol=1e-5), name


@settings(max_examples=50)
@given(st.integers(0, 30), st.integers(0, 30))
def test_two_reports_agree_less_the_further_apart_their_events(gap: int, wider: int) -> None:
    base = datetime(2016, 5, 1, 12)
    near = [base, base + timedelta(days=gap)]
    far = [base, base + timedelta(days=gap + wider)]
    rows, cols = np.array([0]), np.array([1])
    close = date_agreement(date_evidence(["", ""], near, 2.0), rows, cols)[0]
    apart = date_agreement(date_evidence(["", ""], far, 2.0), rows, cols)[0]
    assert 0.0 <= apart <= close <= 1.0
    if gap <= 2:
        assert close == 1.0

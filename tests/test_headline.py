"""The canonical headline: a real member title that says what most members say."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from pipeline.headline import (
    OWN_LEAD_WEIGHT,
    HeadlineCandidate,
    agreement_scores,
    choose_headline,
    first_sentence,
    is_date_line,
    style_penalty,
    without_site_name,
    word_set,
)


def candidates(titles: list[str], body: str) -> list[HeadlineCandidate]:
    return [HeadlineCandidate(f"a{i}", title, body, False) for i, title in enumerate(titles)]


BODY = "Police in Kokomo said four people were shot outside The Ultimate Place bar on Clinton Drive on Sunday."


def test_the_title_carrying_what_members_share_beats_questions_labels_and_colour() -> None:
    titles = [
        "LIVE: shooting updates",
        "Is Kokomo safe at night?",
        "Four people shot outside Kokomo bar on Clinton Drive",
        "Terrifying night as gunfire erupts and neighbours describe chaos, fear and sirens near a bar",
    ]
    vectors = np.eye(4, dtype=np.float32)
    chosen = choose_headline(candidates(titles, BODY), vectors)
    assert chosen.text == titles[2] and chosen.kind == "title"
    assert "agrees best with the reports" in chosen.reason
    agreement = agreement_scores(candidates(titles, BODY), [0.0] * 4)[titles[2]]
    assert f"shares {agreement:.0%} of its words" in chosen.reason and agreement > 0  # the agreement it was chosen by


def test_the_choice_does_not_depend_on_member_order() -> None:
    titles = ["Four shot outside Kokomo bar", "Four people shot outside Kokomo bar", "Kokomo bar shooting: 4 hurt"]
    found = set()
    for order in ([0, 1, 2], [2, 1, 0], [1, 2, 0]):
        members = [HeadlineCandidate(f"id-{i}", titles[i], BODY, False) for i in order]
        picked = choose_headline(members, np.eye(3, dtype=np.float32))
        found.add(picked.text)
    assert len(found) == 1


def test_style_marks_questions_labels_cuts_and_length() -> None:
    assert style_penalty("Four people shot outside Kokomo bar", False) == (1.0, ())
    assert style_penalty("Who shot four people in Kokomo?", False)[1] == ("a question",)
    assert "a label, teaser or opinion" in style_penalty("Opinion | Kokomo needs fewer guns", False)[1]
    assert style_penalty("Four people shot outside", True)[1] == ("cut",)
    assert style_penalty("Shots fired", False)[1] == ("too short",)
    assert "all capitals" in style_penalty("FOUR PEOPLE SHOT OUTSIDE KOKOMO BAR", False)[1]
    assert "all capitals" in style_penalty("ÉMEUTES À PARIS APRÈS LE MATCH", False)[1]
    assert "all capitals" not in style_penalty("ⒶⒷⒸⒹ Ⅷ Ⅸ four people shot", False)[1]  # upper case, not letters


def test_without_titles_the_first_complete_sentence_is_used() -> None:
    members = [HeadlineCandidate("a", "", BODY + " More follows.", False)]
    chosen = choose_headline(members, np.ones((1, 3), dtype=np.float32))
    assert chosen.kind == "sentence" and chosen.text == BODY


def test_a_trailing_site_name_is_removed_and_said() -> None:
    raw = "Teen accidentally shoots himself while taking selfie - KCTV5"
    members = [
        HeadlineCandidate("a", raw, BODY, False),
        HeadlineCandidate("b", "Teen shoots himself while taking a selfie", BODY, False),
    ]
    chosen = choose_headline(members, np.eye(2, dtype=np.float32))
    assert "KCTV5" not in chosen.text
    only = choose_headline(members[:1], np.ones((1, 3), dtype=np.float32))
    assert only.text == "Teen accidentally shoots himself while taking selfie"
    assert only.reason == "the only member's title; site name removed"


def test_site_names_go_and_the_event_stays() -> None:
    cases = {
        "Family in murder - suicide identified - CBS News 8 - San Diego, CA News Station - KFMB Channel 8": (
            "Family in murder - suicide identified"
        ),
        "Woman, son in Roundup murder - suicide identified - KXLF.com | Continuous News | Butte, Montana": (
            "Woman, son in Roundup murder - suicide identified"
        ),
        "Teenage girl shot during turkey hunt: Times Argus Online": "Teenage girl shot during turkey hunt",
        "Waterbury police search for man accused in shooting - WFSB 3 Connecticut": (
            "Waterbury police search for man accused in shooting"
        ),
        # Hyphens and colons inside the headline are not site names.
        "Woman Killed In Queens Hit - And - Run Accident, Driver Charged": (
            "Woman Killed In Queens Hit - And - Run Accident, Driver Charged"
        ),
        "Obama: We will act - White House": "Obama: We will act - White House",
        "Breaking News - Three People Shot in Office Shooting": "Breaking News - Three People Shot in Office Shooting",
    }
    for raw, expected in cases.items():
        assert without_site_name(raw) == expected


@given(st.text(alphabet=st.sampled_from("ab KW:-|.com News"), max_size=60))
def test_removing_a_site_name_keeps_a_prefix_of_three_words_or_more(title: str) -> None:
    cleaned = without_site_name(title)
    if cleaned != (title.rstrip(" -|–—").strip() or title):  # more than dangling separators went
        assert title.startswith(cleaned) and len(cleaned.split()) >= 3


def test_date_lines_are_not_headlines() -> None:
    assert is_date_line("Sunday, March 17, 2013 | 5: 00 PM")
    assert is_date_line("10 June 2013 Last updated at 14: 00 GMT")
    assert not is_date_line("Seacom operations fully restored: 4 November 2011")
    assert not is_date_line("4 Shot at Party")
    assert not is_date_line("Married at 90")
    assert "a date line" in style_penalty("November 28th, 2005, 09: 11 GMT", False)[1]


def shared_words(left: str, right: str) -> float:
    """The pair rule that agreement averages: the Dice coefficient of two texts' word sets."""
    a, b = word_set(left), word_set(right)
    return 2 * len(a & b) / (len(a) + len(b)) if a and b else 0.0


@given(
    st.lists(
        st.tuples(st.text(alphabet=st.sampled_from("ab c d. "), max_size=12), st.text(alphabet="abe .", max_size=20)),
        min_size=1,
        max_size=6,
    )
)
def test_agreement_is_the_weighted_mean_pairwise_share_of_words(members: list[tuple[str, str]]) -> None:
    candidates = [HeadlineCandidate(f"a{i}", title, text, False) for i, (title, text) in enumerate(members)]
    centrality = [0.0] * len(candidates)  # every member a reference, in article id order
    scores = agreement_scores(candidates, centrality)
    for i, candidate in enumerate(candidates):
        if not candidate.title or any(c.title == candidate.title for c in candidates[:i]):
            continue
        references = [
            (text, weight)
            for j, other in enumerate(candidates)
            for text, weight in (
                (other.title, 0.0 if j == i else 1.0),
                (first_sentence(other.text, False)[0] if other.text else "", OWN_LEAD_WEIGHT if j == i else 1.0),
            )
            if text
        ]
        total = sum(weight for _, weight in references)
        expected = sum(shared_words(candidate.title, text) * w for text, w in references) / total if total else 0.0
        assert abs(scores[candidate.title] - expected) < 1e-6


def test_shared_words_is_the_dice_coefficient_of_word_sets() -> None:
    assert shared_words("Four people shot", "four people shot, four") == 1.0
    assert shared_words("Four shot", "Kokomo bar") == 0.0
    assert shared_words("", "Kokomo bar") == 0.0
    assert abs(shared_words("a b c d", "a b") - 2 * 2 / 6) < 1e-9


def test_the_title_in_the_reports_words_beats_one_outlets_wording() -> None:
    body = "Four people were shot outside a Kokomo bar early Sunday, police said."
    titles = [
        "Kokomo nightspot gunfire leaves quartet wounded",
        "Four people shot outside Kokomo bar",
        "Four people shot outside Kokomo bar early Sunday",
    ]
    members = [HeadlineCandidate(f"a{i}", title, body, False) for i, title in enumerate(titles)]
    chosen = choose_headline(members, np.eye(3, dtype=np.float32))
    assert chosen.text != titles[0]


def test_a_title_carrying_a_full_date_is_marked_dated() -> None:
    for title in (
        "Seacom operations fully restored: 4 November 2011",
        "27 / 09 / 2013 - Turkmenistan to hold first - ever parliamentary elections",
        "Stock Market News for March 10, 2014",
        "Making sense of sanctions 09.03.2014",
        "Benzinga's M&A Chatter for Tuesday March 11th 2014",
    ):
        assert style_penalty(title, False) == (0.5, ("dated",)), title
    for title in (
        "Four people shot outside Kokomo bar",
        "Yuan drops as PBOC cuts reference rate by most since July 2012",  # a month and year: no dateline
        "Sept. 11 memorial museum opens to the public",  # no year
        "Dozens injured as 6. 1 - magnitude quake hits Indonesia's Aceh",
        "Married at 90",
    ):
        assert "dated" not in style_penalty(title, False)[1], title
    assert style_penalty("10 June 2013 Last updated at 14: 00 GMT", False)[1] == ("a date line",)  # said once


def test_an_undated_title_beats_the_same_headline_with_its_dateline() -> None:
    body = "Turkmenistan will hold its first parliamentary elections on a two-party basis on 15 December 2013."
    dated = "Turkmenistan to hold first parliamentary elections on a two-party basis: 27 September 2013"
    plain = "Turkmenistan elections on two-party basis"
    members = [HeadlineCandidate("a0", dated, body, False), HeadlineCandidate("a1", plain, body, False)]
    chosen = choose_headline(members, np.eye(2, dtype=np.float32))
    assert chosen.text == plain
    assert "1 title(s) marked down as question, label, date line, dated" in chosen.reason
    only_dated = [HeadlineCandidate("a0", dated, body, False), HeadlineCandidate("a1", dated + " ", body, False)]
    chosen = choose_headline(only_dated, np.eye(2, dtype=np.float32))
    assert chosen.text == dated and "is dated (no better title)" in chosen.reason


def test_a_title_its_own_lead_bears_out_beats_a_follow_up_angle_in_a_story_of_two() -> None:
    members = [
        HeadlineCandidate(
            "a0",
            "Four people shot outside Kokomo nightclub",
            "Four people were shot outside a Kokomo nightclub.",
            False,
        ),
        HeadlineCandidate(
            "a1",
            "Kokomo mayor calls for calm after weekend",
            "The mayor spoke to reporters at city hall on Monday.",
            False,
        ),
    ]
    scores = agreement_scores(members, [0.0, 0.0])
    assert scores[members[0].title] > scores[members[1].title]
    assert choose_headline(members, np.eye(2, dtype=np.float32)).text == members[0].title

"""The canonical headline: a real member title that says what most members say."""

from __future__ import annotations

import numpy as np

from pipeline.headline import HeadlineCandidate, choose_headline, style_penalty


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
    assert "consensus" in chosen.reason


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

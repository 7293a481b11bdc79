"""How well a story's canonical headline says what its members say, against simple choices.

For every story of two or more titled members in a database, each rule picks one member title:

- `storyclust`: the stored headline (`pipeline.headline`);
- `first`: the earliest member's title (publication time, then article id);
- `shortest` and `longest`: by words;
- `centroid`: the member nearest the centroid of the members' sentence vectors (the previous chooser).

and the pick is scored by **shared-fact F1**: recall is the share of the story's shared names and numbers
(capitalised names and numbers that at least half of the members, and two at least, name in title or body) that the title
carries; precision is the mean share of members that name each of the title's words (a word few members
share, or a long title, lowers it). The F1 of the two, averaged over stories, is reported per rule. It is
not the chooser's own objective: the chooser weighs all words by their reference weight, the score counts
names and numbers for recall and every word equally for precision.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

RULES = ("storyclust", "first", "shortest", "longest", "centroid")


def shared_fact_f1(headline: str, members: list[str]) -> float | None:
    """Shared-fact F1 of one headline against its story's member texts (None: no shared names)."""
    from pipeline.headline import title_terms
    from pipeline.similarity import entity_tokens

    names = [set(entity_tokens(text)) for text in members]
    counts: dict[str, int] = {}
    for found in names:
        for name in found:
            counts[name] = counts.get(name, 0) + 1
    shared = {name for name, count in counts.items() if count >= max(2, len(members) / 2)}
    if not shared:
        return None
    words = title_terms(headline)
    if not words:
        return 0.0
    member_words = [title_terms(text) for text in members]
    recall = len(shared & words) / len(shared)
    precision = float(np.mean([sum(word in found for found in member_words) / len(members) for word in words]))
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def headline_scores(db: Path, max_chars: int = 2000) -> dict[str, Any]:
    """Mean shared-fact F1 per rule over the stories of `db` with two or more titled members."""
    import duckdb

    from pipeline.stage import text_hash

    con = duckdb.connect(str(db), read_only=True)
    rows = con.execute(
        """
        SELECT m.story_id, s.headline, a.article_id, a.title, a.text, a.published_at
        FROM story_members m JOIN stories s USING (story_id) JOIN articles a USING (article_id)
        WHERE s.status = 'open' ORDER BY m.story_id, a.published_at NULLS LAST, a.article_id
        """
    ).fetchall()
    vectors = {
        key: np.asarray(vector, dtype=np.float32)
        for key, vector in con.execute("SELECT text_hash, vector FROM embedding_cache").fetchall()
    }
    con.close()
    stories: dict[str, list[tuple]] = {}
    for row in rows:
        stories.setdefault(row[0], []).append(row)
    totals: dict[str, list[float]] = {rule: [] for rule in RULES}
    for members in stories.values():
        titled = [m for m in members if (m[3] or "").strip()]
        if len(titled) < 2:
            continue
        texts = [f"{m[3] or ''}\n{m[4] or ''}".strip() for m in members]
        keys = [text_hash(t[:max_chars]) for t in texts]
        if not all(k in vectors for k in keys):
            continue
        matrix = np.stack([vectors[k] for k in keys])
        centre = matrix.mean(axis=0)
        by_id = {m[2]: i for i, m in enumerate(members)}
        picks = {
            "storyclust": members[0][1],
            "first": titled[0][3],
            "shortest": min(titled, key=lambda m: (len(m[3].split()), m[2]))[3],
            "longest": max(titled, key=lambda m: (len(m[3].split()), m[2]))[3],
            "centroid": max(titled, key=lambda m: (round(float(matrix[by_id[m[2]]] @ centre), 6), m[2]))[3],
        }
        scored = {rule: shared_fact_f1(title, texts) for rule, title in picks.items()}
        if any(value is None for value in scored.values()):
            continue
        for rule, value in scored.items():
            totals[rule].append(value)
    return {
        "stories": len(totals["storyclust"]),
        **{rule: round(float(np.mean(values)), 4) if values else None for rule, values in totals.items()},
    }

"""The canonical headline against human-style event labels: token F1 and embedding cosine to the label.

    python -m bench.labels ../shared/data

The labels (`bench/labels/*.jsonl`, one line per gold story: set, story, label) were written from each gold
story's member titles and texts, as a desk editor would label the event, before looking at what any chooser
picks (provenance in `bench/labels/README.md`). Each gold story of two or more titled members is headlined by

- `storyclust`: `pipeline.headline.choose_headline` on the story's members, as a run would call it;
- `first`: the earliest member's title (publication time, then article id);
- `shortest`: the title of fewest words (then the earliest);
- `title centroid`: the title nearest the centroid of the members' title embeddings;
- `best member title`: the member title nearest the label (by token F1, and by cosine): the upper bound of
  any chooser that picks a member title.

`ranker fitted here` is no rule anyone can ship: it measures how far choosing can go on this set's labels. A
pairwise logistic ranker over what a chooser can know of each title (the chooser's agreement, fit, coverage,
precision and style penalty; its length and distance from the story's median length; its member's centrality;
the title's cosine to the centroid of the story's titles and to the centroid of its contents) is fitted on four
fifths of the set's stories against the labels (token F1, or cosine) and picks in the fifth left out (5 folds).
Where even it stays far below `best member title`, that bound is chance among a story's few titles, not a
better choice left untaken.

Token F1: the harmonic mean of the shares of the pick's and the label's lower-cased word tokens that the
other has (each token counted as often as it occurs). Cosine: of the all-MiniLM-L6-v2 vectors of the pick and
the label. Both averaged over the stories of each set. Every rule picks among the same member titles, with
trailing site names removed as the chooser removes them (`pipeline.headline.without_site_name`), so the
comparison is of the choice alone.
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import machine, markdown_table, write_results

LABELS = Path(__file__).parent / "labels"
RULES = ("storyclust", "first", "shortest", "title centroid", "ranker fitted here", "best member title")
FOLDS = 5
_WORD = re.compile(r"[^\W_]+(?:['’.-][^\W_]+)*")


def tokens(text: str) -> list[str]:
    return [token.lower() for token in _WORD.findall(text)]


def token_f1(pick: str, label: str) -> float:
    """SQuAD-style token F1 of two texts (lower-cased word tokens, multiset overlap)."""
    a, b = Counter(tokens(pick)), Counter(tokens(label))
    common = sum((a & b).values())
    if not common:
        return 0.0
    precision, recall = common / sum(a.values()), common / sum(b.values())
    return 2 * precision * recall / (precision + recall)


def read_labels(where: Path = LABELS) -> dict[tuple[str, str], str]:
    """The labels of a file, or of every `*.jsonl` file of a folder: {(set, story): label}."""
    labels = {}
    for path in [where] if where.is_file() else sorted(where.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                labels[(row["set"], row["story"])] = row["label"]
    return labels


def gold_stories(folder: Path) -> dict[str, list[Any]]:
    """The cleaned articles of each gold story (as a run would read and normalize them), in time order."""
    from datetime import datetime

    from pipeline.config import InputConfig
    from pipeline.evaluate import read_gold
    from pipeline.ingest import ingest
    from pipeline.normalize import normalize_record

    gold = read_gold(folder / "gold.jsonl")
    stories: dict[str, list[Any]] = defaultdict(list)
    for record in ingest([str(folder / "docs.jsonl")], InputConfig()).records:
        article = normalize_record(record)
        stories[gold[article.article_id]].append(article)
    for members in stories.values():
        members.sort(key=lambda a: (a.published_at is None, a.published_at or datetime.min, a.article_id))
    return stories


@dataclass(frozen=True)
class TitleChoices:
    """One story's titles as the fitted ranker sees them: a row of features each (see the module docstring), and
    each one's token F1 and cosine to the label."""

    features: np.ndarray
    token_f1: np.ndarray
    cosine: np.ndarray


def picks(members: list[Any], label: str, embed: Any) -> tuple[dict[str, str], TitleChoices]:
    """The headline each rule picks for one story, and its titles for the fitted ranker."""
    from pipeline.headline import HeadlineCandidate, choose_headline, title_scores, without_site_name

    titled = [a for a in members if a.title]
    # Every rule picks among the same titles, trailing site names removed as the chooser removes them.
    clean = {a.title: without_site_name(a.title) for a in titled}
    contents = embed([a.content for a in members])
    candidates = [
        HeadlineCandidate(a.article_id, a.title, a.text, "title truncated" in a.notes, "truncated" in a.notes)
        for a in members
    ]
    titles = [clean[a.title] for a in titled]
    title_vectors = embed(titles)
    centre = title_vectors.mean(axis=0)
    label_vector = embed([label])[0]
    chosen = {
        "storyclust": choose_headline(candidates, contents).text,
        "first": titles[0],
        "shortest": min(titles, key=lambda t: len(t.split())),
        "title centroid": titles[int(np.argmax(title_vectors @ centre))],
        "best member title": max(titles, key=lambda t: token_f1(t, label)),
        "best member title (cosine)": titles[int(np.argmax(title_vectors @ label_vector))],
    }
    centrality = contents @ contents.mean(axis=0)
    scores = title_scores([replace(c, title=clean[c.title]) if c.title else c for c in candidates], centrality.tolist())
    titled_rows = [i for i, a in enumerate(members) if a.title]
    words = np.array([len(t.split()) for t in titles], dtype=float)
    features = np.column_stack(
        [
            [scores[i].agreement for i in titled_rows],
            [scores[i].fit for i in titled_rows],
            [scores[i].coverage for i in titled_rows],
            [scores[i].precision for i in titled_rows],
            [-len(scores[i].problems) for i in titled_rows],  # log2 of the chooser's style factor
            words / 10,
            np.abs(words - np.median(words)) / 10,
            centrality[titled_rows],
            title_vectors @ centre,
            title_vectors @ contents.mean(axis=0),
        ]
    )
    targets = np.array([token_f1(t, label) for t in titles]), title_vectors @ label_vector
    return chosen, TitleChoices(features, *targets)


def fitted_ranker_picks(stories: list[TitleChoices], target: str) -> list[int]:
    """The title (index) of each story that a pairwise logistic ranker picks, fitted on the other folds' stories
    against `target` ("token_f1" or "cosine"): of two titles of a story, the one clearly nearer the label (by
    more than 0.05) should score higher."""
    from itertools import permutations

    from sklearn.linear_model import LogisticRegression

    chosen = [0] * len(stories)
    order = np.random.default_rng(0).permutation(len(stories))
    for fold in np.array_split(order, FOLDS):
        held_out = set(fold.tolist())
        differences = []
        for k, story in enumerate(stories):
            if k not in held_out:
                nearness = getattr(story, target)
                differences += [
                    story.features[a] - story.features[b]
                    for a, b in permutations(range(len(nearness)), 2)
                    if nearness[a] > nearness[b] + 0.05
                ]
        if not differences:
            continue
        wins = np.array(differences)
        scale = wins.std(axis=0) + 1e-9
        pairs = np.concatenate([wins, -wins]) / scale
        outcome = np.r_[np.ones(len(wins)), np.zeros(len(wins))]
        weights = LogisticRegression(fit_intercept=False, max_iter=5000).fit(pairs, outcome).coef_[0] / scale
        for k in held_out:
            chosen[k] = int(np.argmax(stories[k].features @ weights))
    return chosen


def measure_set(name: str, folder: Path, labels: dict[tuple[str, str], str], embed: Any) -> dict[str, Any]:
    scores: dict[str, list[tuple[float, float]]] = defaultdict(list)
    rows = []
    choices = []
    for story, members in sorted(gold_stories(folder).items()):
        label = labels.get((name, story))
        if label is None or sum(1 for a in members if a.title) < 2:
            continue
        chosen, titles = picks(members, label, embed)
        vectors = embed([label, *chosen.values()])
        cosines = dict(zip(chosen, (vectors[1:] @ vectors[0]).tolist(), strict=True))
        for rule, pick in chosen.items():
            scores[rule].append((token_f1(pick, label), cosines[rule]))
        rows.append({"story": story, "label": label, **chosen})
        choices.append(titles)
    best_cosine = [cosine for _, cosine in scores.pop("best member title (cosine)")]
    means = {rule: [float(np.mean([s[k] for s in values])) for k in (0, 1)] for rule, values in scores.items()}
    means["best member title"][1] = float(np.mean(best_cosine))
    by_f1, by_cosine = (fitted_ranker_picks(choices, target) for target in ("token_f1", "cosine"))
    means["ranker fitted here"] = [
        float(np.mean([c.token_f1[k] for c, k in zip(choices, by_f1, strict=True)])),
        float(np.mean([c.cosine[k] for c, k in zip(choices, by_cosine, strict=True)])),
    ]
    return {"set": name, "stories": len(rows), "means": means, "picks": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="folder of the labelled sets (../shared/data)")
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    parser.add_argument(
        "--labels",
        type=Path,
        default=LABELS,
        help="a labels file, or a folder of them (default: bench/labels); e.g. a labelled set not in ../shared",
    )
    args = parser.parse_args()
    from pipeline.config import EmbedConfig
    from pipeline.embed import Embedder

    embedder = Embedder(EmbedConfig())
    cache: dict[str, np.ndarray] = {}

    def embed(texts: list[str]) -> np.ndarray:
        todo = sorted({t for t in texts if t not in cache})
        if todo:
            cache.update(zip(todo, embedder.encode(todo), strict=True))
        return np.stack([cache[t] for t in texts])

    labels = read_labels(args.labels)
    sets = sorted({name for name, _ in labels})
    results = [measure_set(name, args.data / name, labels, embed) for name in sets if (args.data / name).is_dir()]
    table = [
        [r["set"], r["stories"], rule, r["means"][rule][0], r["means"][rule][1]] for r in results for rule in RULES
    ]
    text = "\n".join(
        [
            f"# Headlines against human-style event labels ({machine()['date']})",
            "",
            "Gold stories of two or more titled members; token F1 and all-MiniLM-L6-v2 cosine of the pick to the label.",
            "",
            markdown_table(["set", "stories", "rule", "token F1", "cosine"], table),
        ]
    )
    write_results(args.out, "labels", {"machine": machine(), "results": results}, text)


if __name__ == "__main__":
    main()

"""A synthetic news stream with known stories, made from real headlines, for the scale benchmark.

Each story instance takes one real story's headlines (a gold story of uci-news-head, or of ecbplus with a
headline), and reports them perturbed the way aggregators do: dropped and reordered words, source
prefixes and suffixes, truncation with "…". Items arrive at a steady rate, so a longer stream covers more
days; one real story is reused only after `reuse_gap_days`, so two instances of it are different events.

    python -m bench.stream 20000 --out stream.jsonl --gold stream-gold.jsonl
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

PREFIXES = ["Reuters - ", "AP: ", "UPDATE 2-", "BREAKING: ", "Analysis: ", "WATCH: "]
SUFFIXES = [" - BBC News", " | Reuters", " - The Guardian", " (Video)", " - CNN.com", " — Ukrinform."]
SOURCES = [
    "Reuters",
    "AP",
    "BBC News",
    "The Guardian",
    "CNN",
    "Bloomberg",
    "Le Monde",
    "Ukrinform",
    "NPR",
    "Al Jazeera",
]
START = datetime(2024, 1, 1, tzinfo=UTC)


def templates_from(folders: list[Path]) -> list[list[str]]:
    """Headlines grouped by gold story, from labelled sets (items without a title are skipped)."""
    return [titles for _, titles in named_templates(folders)]


def named_templates(folders: list[Path]) -> list[tuple[str, list[str]]]:
    """`templates_from` with each template's "set/story" name, in the same order."""
    groups: dict[str, list[str]] = defaultdict(list)
    for folder in folders:
        titles = {}
        for line in (folder / "docs.jsonl").read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            if (row.get("title") or "").strip():
                titles[row["id"]] = row["title"].strip()
        for line in (folder / "gold.jsonl").read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            if row["id"] in titles:
                groups[f"{folder.name}/{row['story']}"].append(titles[row["id"]])
    return [(k, sorted(set(v))) for k, v in sorted(groups.items()) if v]


def perturb(title: str, rng: np.random.Generator) -> str:
    words = title.split()
    if len(words) > 4 and rng.random() < 0.3:
        for _ in range(int(rng.integers(1, 3))):
            del words[int(rng.integers(0, len(words)))]
    if len(words) > 3 and rng.random() < 0.2:
        i = int(rng.integers(0, len(words) - 1))
        words[i], words[i + 1] = words[i + 1], words[i]
    if len(words) > 5 and rng.random() < 0.15:
        words = words[: max(3, int(len(words) * rng.uniform(0.6, 0.9)))] + ["…"]
    text = " ".join(words)
    if rng.random() < 0.2:
        text = PREFIXES[int(rng.integers(0, len(PREFIXES)))] + text
    if rng.random() < 0.2:
        text += SUFFIXES[int(rng.integers(0, len(SUFFIXES)))]
    return text


def generate(
    n: int,
    templates: list[list[str]],
    seed: int = 0,
    items_per_day: float = 2000.0,
    reuse_gap_days: float = 5.0,
) -> tuple[list[dict], list[dict]]:
    """`n` records in time order and their gold stories; the same arguments give the same stream."""
    rng = np.random.default_rng(seed)
    span_hours = 24.0 * n / items_per_day
    last_used = np.full(len(templates), -np.inf)
    items: list[tuple[float, str, str, int]] = []
    story = 0
    while len(items) < n:
        start = float(rng.uniform(0.0, span_hours))
        free = np.flatnonzero(last_used <= start - 24.0 * reuse_gap_days)
        template = int(rng.choice(free)) if len(free) else int(np.argmin(last_used))
        last_used[template] = start
        size = int(np.clip(round(np.exp(rng.normal(2.3, 1.0))), 1, 400))
        for _ in range(min(size, n - len(items))):
            title = templates[template][int(rng.integers(0, len(templates[template])))]
            hours = start + min(float(rng.exponential(10.0)), 72.0)
            items.append((hours, perturb(title, rng), f"story-{story}", template))
        story += 1
    items.sort(key=lambda item: item[0])
    records, gold = [], []
    for number, (hours, title, story_id, template) in enumerate(items):
        item_id = f"syn-{number}"
        records.append(
            {
                "id": item_id,
                "title": title,
                "text": "",
                "source": SOURCES[int(rng.integers(0, len(SOURCES)))],
                "url": None,
                "published_at": (START + timedelta(hours=hours)).isoformat().replace("+00:00", "Z"),
            }
        )
        gold.append({"id": item_id, "story": story_id, "template": template})
    return records, gold


def write_jsonl(rows: list[dict], path: Path) -> None:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--gold", type=Path, required=True)
    args = parser.parse_args()
    templates = templates_from([args.data / "uci-news-head", args.data / "ecbplus"])
    records, gold = generate(args.n, templates, args.seed)
    write_jsonl(records, args.out)
    write_jsonl(gold, args.gold)


if __name__ == "__main__":
    main()

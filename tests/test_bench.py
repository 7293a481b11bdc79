"""The benchmark code on tiny inputs (the benchmarks themselves run with `make bench`, not in tests)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from bench.baselines import cosine_components, minhash_components, plain_hdbscan, singletons_for_noise
from bench.common import load_set, markdown_table, measure
from bench.slices import split_by_time


def write_set(folder: Path, rows: list[dict], stories: list[str]) -> Path:
    folder.mkdir()
    (folder / "docs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    gold = "".join(json.dumps({"id": r["id"], "story": s}) + "\n" for r, s in zip(rows, stories, strict=True))
    (folder / "gold.jsonl").write_text(gold, encoding="utf-8")
    return folder


def test_split_by_time_keeps_every_item_once_in_time_order(tmp_path: Path) -> None:
    stamps = ["2024-01-03T00:00:00Z", None, "2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z", "2024-01-01T12:00:00Z"]
    rows = [{"id": str(i), "title": f"t{i}", "published_at": s} for i, s in enumerate(stamps)]
    folder = write_set(tmp_path / "set", rows, ["a"] * 5)
    parts = split_by_time(folder / "docs.jsonl", 2, tmp_path)
    ids = [[json.loads(line)["id"] for line in p.read_text().splitlines()] for p in parts]
    assert ids == [["2", "4", "3"], ["0", "1"]]  # undated last


def test_load_set_joins_title_and_text(tmp_path: Path) -> None:
    rows = [{"id": "x", "title": "Head", "text": "Body"}, {"id": "y", "title": "", "text": "Only body"}]
    labelled = load_set(write_set(tmp_path / "set", rows, ["a", "b"]))
    assert labelled.texts == ["Head\nBody", "Only body"]
    assert labelled.gold == {"x": "a", "y": "b"}


def test_baselines_group_what_they_should() -> None:
    vectors = np.array([[1, 0], [0.99, 0.141], [0, 1], [0.141, 0.99], [-1, 0]], dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    labels = cosine_components([""] * 5, vectors)
    assert labels[0] == labels[1] and labels[2] == labels[3] and len(set(labels)) == 3
    texts = ["the cat sat on the mat today", "the cat sat on the mat today!", "a dog ran in the park at noon"]
    groups = minhash_components(texts, np.zeros((3, 2)))
    assert groups[0] == groups[1] != groups[2]
    assert list(singletons_for_noise(np.array([0, -1, 0, -1]))) == [0, 1, 0, 2]
    points = np.vstack([np.random.default_rng(0).normal(c, 0.01, (4, 2)) for c in ((0, 0), (5, 5))])
    hdb = plain_hdbscan([""] * 8, points.astype(np.float32), 2)
    assert len(set(hdb[:4])) == 1 and len(set(hdb[4:])) == 1 and hdb[0] != hdb[4]


def test_measure_reports_exit_code_time_and_peak_memory() -> None:
    held = (
        "import sys, time; x = bytearray(50_000_000); x[::4096] = b'1' * len(x[::4096]); time.sleep(0.3); sys.exit(3)"
    )
    result = measure([sys.executable, "-c", held])
    assert result.returncode == 3
    assert result.peak_mb >= 45
    assert result.seconds > 0


def test_markdown_table_formats_numbers() -> None:
    assert markdown_table(["a", "b"], [[0.12345, 123.456]]).splitlines() == [
        "| a | b |",
        "|---|---|",
        "| 0.123 | 123.5 |",
    ]


def test_stream_is_deterministic_in_time_order_with_known_stories() -> None:
    from bench.stream import generate, perturb

    templates = [["Fed raises rates by a quarter point", "Fed lifts rates again"], ["Quake hits Chile coast"]]
    records, gold = generate(300, templates, seed=3)
    again, _ = generate(300, templates, seed=3)
    assert records == again
    assert len(records) == len(gold) == 300
    assert [r["published_at"] for r in records] == sorted(r["published_at"] for r in records)
    assert {g["id"] for g in gold} == {r["id"] for r in records}
    assert len({g["story"] for g in gold}) > 2
    rng = np.random.default_rng(0)
    variants = {perturb("The central bank raised its main rate by a quarter point on Tuesday", rng) for _ in range(50)}
    assert len(variants) > 10  # words dropped or swapped, prefixes, suffixes, truncation


def test_shared_fact_f1_rewards_shared_names_and_penalises_extra_words() -> None:
    from bench.headlines import shared_fact_f1

    members = [
        "Four shot at Kokomo bar. Police in Kokomo said the Clinton Drive shooting hurt four.",
        "Kokomo police: four hurt in shooting on Clinton Drive, says Howard County dispatch.",
        "Shooting outside Kokomo nightclub on Clinton Drive sends four to hospital.",
    ]
    plain = shared_fact_f1("Four shot outside Kokomo bar on Clinton Drive", members)
    long = shared_fact_f1(
        "Four shot outside Kokomo bar on Clinton Drive as neighbours describe terrifying night of chaos", members
    )
    vague = shared_fact_f1("Shooting leaves four hurt", members)
    assert plain is not None and long is not None and vague is not None
    assert plain > long and plain > vague
    assert shared_fact_f1("Anything", ["no names here", "none here either"]) is None


def test_time_variants_drop_every_third_date_and_keep_each_report_in_its_original_time_slice() -> None:
    from bench.time_evidence import time_slices, variant_rows

    stamps = ["2024-01-05T00:00:00Z", "2024-01-01T00:00:00Z", "2024-01-03T00:00:00Z", None, "2024-01-02T00:00:00Z"]
    original = [{"id": str(i), "title": f"t{i}", "text": "body", "published_at": s} for i, s in enumerate(stamps)]
    third = variant_rows(original, "third")
    assert [r["published_at"] for r in third] == [stamps[0], stamps[1], None, None, stamps[4]]
    assert all(r["published_at"] is None for r in variant_rows(original, "undated"))
    assert all(r["text"] == "" for r in variant_rows(original, "dated", headlines=True))
    assert original[2]["published_at"] == stamps[2]  # the original rows are left as they were
    parts = time_slices(original, third, 2)
    assert [[r["id"] for r in part] for part in parts] == [
        ["1", "4", "2"],
        ["0", "3"],
    ]  # "2" lost its date, kept its place


def test_token_f1_counts_shared_word_tokens_case_and_punctuation_aside() -> None:
    from bench.labels import token_f1

    assert token_f1("Floods close roads in Valencia", "floods close roads in valencia.") == 1.0
    assert token_f1("Floods close roads", "Quake hits Chile") == 0.0
    # 2 of 3 pick tokens and 2 of 4 label tokens shared: precision 2/3, recall 1/2
    assert (
        abs(token_f1("Floods hit Valencia", "Valencia floods close roads") - 2 * (2 / 3) * (1 / 2) / (2 / 3 + 1 / 2))
        < 1e-9
    )
    assert token_f1("", "anything") == 0.0


def test_fitted_ranker_learns_the_feature_that_tells_the_nearest_title_and_picks_out_of_fold() -> None:
    import numpy as np

    from bench.labels import TitleChoices, fitted_ranker_picks

    rng = np.random.default_rng(3)
    stories = []
    for _ in range(40):  # three titles each: feature 1 says which is nearest the label, feature 0 is noise
        noise, signal = rng.random(3), rng.permutation(3).astype(float)
        nearness = signal / 2
        stories.append(TitleChoices(np.column_stack([noise, signal]), nearness, nearness))
    for target in ("token_f1", "cosine"):
        assert fitted_ranker_picks(stories, target) == [int(np.argmax(s.features[:, 1])) for s in stories]
    flipped = [TitleChoices(s.features, -s.token_f1, -s.cosine) for s in stories]  # now the lowest is nearest
    assert fitted_ranker_picks(flipped, "token_f1") == [int(np.argmin(s.features[:, 1])) for s in stories]


def test_intake_writes_a_gzipped_spool_and_a_warc_that_read_back(tmp_path: Path) -> None:
    from bench.intake import article_pages, write_big_jsonl_gz, write_big_warc_gz
    from pipeline.config import InputConfig
    from pipeline.ingest import ingest

    records = [
        {"id": f"r{n}", "title": f"Harbour berth {n} reopens", "text": "", "source": "Wire", "url": None,
         "published_at": f"2024-01-0{n + 1}T10:30:00Z"}
        for n in range(3)
    ]  # fmt: skip
    lines = write_big_jsonl_gz(records, tmp_path / "news.jsonl.gz", 1)
    assert lines == 1000  # the size is checked every 1,000 lines
    spool = ingest([str(tmp_path / "news.jsonl.gz")], InputConfig())
    assert len(spool.records) == 1000 and spool.records[3].id == "r0-r1"
    sentences = [f"The harbour council met for meeting number {n} on Monday and approved the budget." for n in range(9)]
    pages = write_big_warc_gz(article_pages(records, sentences), tmp_path / "news.warc.gz", 100_000)
    crawl = ingest([str(tmp_path / "news.warc.gz")], InputConfig())
    assert len(crawl.records) == pages > 3 and not crawl.rejects
    assert [(r.title, r.source, r.published_at.isoformat()) for r in crawl.records[:2]] == [
        ("Harbour berth 0 reopens", "Wire", "2024-01-01T10:30:00"),
        ("Harbour berth 1 reopens", "Wire", "2024-01-02T10:30:00"),
    ]

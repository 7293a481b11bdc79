"""Incremental quality: one labelled set split into consecutive time slices, run one after another.

Compares the stories of N sequential runs (as cron would make them) with one run over the whole file,
then re-runs the last slice and the whole file over the sliced database and checks that no
(story_id, article_id) pair changed.

    python -m bench.slices ../shared/data/uci-news-head --slices 12

It also times a cold run of the whole file (fresh db, whole process) against a warm re-run of it, median of 3
each, with the package's bytecode compiled as `make` installs it: this machine sets PYTHONDONTWRITEBYTECODE, so
without it every run would compile the pipeline's sources, which a user's runs do once.
"""

from __future__ import annotations

import argparse
import compileall
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import machine, markdown_table, measure
from pipeline.config import Config, load_config
from pipeline.evaluate import read_gold, score
from pipeline.runner import run
from pipeline.store import Store


def split_by_time(docs: Path, slices: int, out_dir: Path) -> list[Path]:
    """Write `slices` JSONL files of consecutive items by published_at (undated items last, file order kept)."""
    lines = [line for line in docs.read_text(encoding="utf-8").splitlines() if line.strip()]
    keyed = []
    for position, line in enumerate(lines):
        stamp = json.loads(line).get("published_at") or ""
        keyed.append((stamp == "", stamp, position, line))
    keyed.sort()
    size = -(-len(keyed) // slices)
    paths = []
    for number in range(slices):
        chunk = keyed[number * size : (number + 1) * size]
        if not chunk:
            break
        path = out_dir / f"slice-{number + 1:02d}.jsonl"
        path.write_text("".join(row[3] + "\n" for row in chunk), encoding="utf-8")
        paths.append(path)
    return paths


def memberships(db: Path) -> dict[str, str]:
    with Store(db, read_only=True) as store:
        return store.memberships()


def compare(data: Path, slices: int, config: Config, work: Path, config_path: str | None = None) -> dict[str, Any]:
    docs, gold = data / "docs.jsonl", read_gold(data / "gold.jsonl")
    parts = split_by_time(docs, slices, work)

    whole_db = work / "whole.duckdb"
    command = [sys.executable, "-m", "pipeline.cli", "run", str(docs), "--db", str(whole_db), "-q"]
    if config_path:
        command += ["--config", config_path]
    compileall.compile_dir(Path(__file__).parents[1] / "pipeline", quiet=1)
    colds = []
    for _ in range(3):
        whole_db.unlink(missing_ok=True)
        shutil.rmtree(f"{whole_db}.segments", ignore_errors=True)
        colds.append(measure(command, {"HF_HUB_OFFLINE": "1"}).seconds)
    warms = [measure(command, {"HF_HUB_OFFLINE": "1"}).seconds for _ in range(3)]
    cold, warm = statistics.median(colds), statistics.median(warms)
    whole = score(memberships(whole_db), gold)

    sliced_db = work / "sliced.duckdb"
    start = time.perf_counter()
    merges = 0
    for part in parts:
        merges += run([str(part)], config, db=sliced_db).stories_merged
    sliced_seconds = time.perf_counter() - start
    before = memberships(sliced_db)
    sliced = score(before, gold)

    rerun_last = run([str(parts[-1])], config, db=sliced_db)
    rerun_whole = run([str(docs)], config, db=sliced_db)
    after = memberships(sliced_db)
    changed = sum(1 for article, story in before.items() if after.get(article) != story) + len(set(after) - set(before))
    return {
        "data": str(data),
        "slices": len(parts),
        "whole": whole.to_dict(),
        "sliced": sliced.to_dict(),
        "bcubed_f1_gap": round(whole.bcubed_f1 - sliced.bcubed_f1, 4),
        "stories_merged_in_slices": merges,
        "cold_whole_seconds": cold,
        "warm_rerun_seconds": warm,
        "cold_runs": colds,
        "warm_runs": warms,
        "warm_to_cold": round(warm / cold, 3),
        "sliced_seconds": round(sliced_seconds, 1),
        "rerun_new_articles": rerun_last.articles_new + rerun_whole.articles_new,
        "rerun_changed_pairs": changed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="folder with docs.jsonl and gold.jsonl")
    parser.add_argument("--slices", type=int, default=12)
    parser.add_argument("--config", help="TOML config (default: the built-in defaults)")
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args()
    config = load_config(args.config)
    with tempfile.TemporaryDirectory() as work:
        result = {"machine": machine(), **compare(args.data, args.slices, config, Path(work), args.config)}
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"incremental-{args.data.name}"
    (args.out / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    whole, sliced = result["whole"], result["sliced"]
    text = "\n".join(
        [
            f"# Incremental runs on {args.data.name}, {result['machine']['date']}",
            "",
            markdown_table(
                ["", "BCubed P", "BCubed R", "BCubed F1", "ARI"],
                [
                    [
                        "one run over the whole file",
                        whole["bcubed_precision"],
                        whole["bcubed_recall"],
                        whole["bcubed_f1"],
                        whole["ari"],
                    ],
                    [
                        f"{result['slices']} time slices, one run each",
                        sliced["bcubed_precision"],
                        sliced["bcubed_recall"],
                        sliced["bcubed_f1"],
                        sliced["ari"],
                    ],
                ],
            ),
            "",
            f"F1 gap (whole - sliced): {result['bcubed_f1_gap']:+.4f}; stories merged by the slice runs: "
            f"{result['stories_merged_in_slices']}.",
            f"Re-running the last slice and then the whole file over the sliced database: "
            f"{result['rerun_new_articles']} new articles, {result['rerun_changed_pairs']} changed (story_id, article_id) pairs.",
            f"Whole file, whole process, median of 3: cold {result['cold_whole_seconds']:.2f} s (fresh db, runs "
            f"{result['cold_runs']}), warm re-run {result['warm_rerun_seconds']:.2f} s (runs {result['warm_runs']}) "
            f"= {100 * result['warm_to_cold']:.1f}% of cold.",
        ]
    )
    (args.out / f"{stem}.md").write_text(text + "\n", encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()

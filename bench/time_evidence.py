"""Time as evidence: the labelled sets with their dates, with every third date removed, and with none.

    python -m bench.time_evidence ../shared/data --slices 12

Each variant is built here from `docs.jsonl` (nothing is copied into the project): `dated` as published,
`third` with every third report's `published_at` set to null (in file order), `undated` with all of them
null. Each runs once over the whole file into a fresh database, and for the dated stream of one kind of event
(gvc-val) also as `--slices` cron runs over consecutive time slices, cut in the order of the original dates
so that the undated reports are spread over the slices. `gvc-val headlines` is the same stream with titles
only: short texts about many events of one kind, where the publication date is most of what tells two
shootings apart; `uci-news-head` (headlines too, an aggregator's broader stories) is its counterweight: a rule
that tells undated shootings apart by splitting undated headlines of one story shows there. Reported: BCubed
precision, recall and F1 per variant.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from bench.common import machine, markdown_table, write_results
from pipeline.config import Config, load_config
from pipeline.evaluate import read_gold, score
from pipeline.runner import run
from pipeline.store import Store

MODES = ("dated", "third", "undated")


def variant_rows(rows: list[dict[str, Any]], mode: str, headlines: bool = False) -> list[dict[str, Any]]:
    """The rows of one variant: dates as published, every third removed (file order), or none; titles only
    with `headlines`."""
    out = []
    for number, row in enumerate(rows):
        row = dict(row)
        if mode == "undated" or (mode == "third" and number % 3 == 2):
            row["published_at"] = None
        if headlines:
            row["text"] = ""
        out.append(row)
    return out


def time_slices(original: list[dict[str, Any]], rows: list[dict[str, Any]], slices: int) -> list[list[dict[str, Any]]]:
    """`rows` cut into consecutive slices by the original rows' dates (undated originals last, file order kept):
    a report whose date was removed stays in the slice its date put it in."""
    order = sorted(
        range(len(rows)),
        key=lambda k: (original[k].get("published_at") is None, original[k].get("published_at") or "", k),
    )
    size = -(-len(order) // slices)
    return [[rows[k] for k in order[start : start + size]] for start in range(0, len(order), size)]  # fmt: skip


def measure_variant(rows: list[dict[str, Any]], gold: dict[str, str], runs: list[list[dict[str, Any]]], config: Config, work: Path) -> dict[str, Any]:  # fmt: skip
    """Scores of the stories built by these runs (each a list of rows) into one fresh database."""
    db = work / "variant.duckdb"
    for stale in work.glob("variant.duckdb*"):  # the file, its lock and its segments folder
        if stale.is_dir():
            shutil.rmtree(stale)
        else:
            stale.unlink()
    for number, part in enumerate(runs):
        path = work / f"part-{number:02d}.jsonl"
        path.write_text("".join(json.dumps(row) + "\n" for row in part), encoding="utf-8")
        run([str(path)], config, db=db)
    with Store(db, read_only=True) as store:
        found = score(store.memberships(), gold)
    return {"runs": len(runs), **found.to_dict()}


def measure_all(data: Path, slices: int, config: Config, work: Path) -> list[dict[str, Any]]:
    results = []
    plan = [("gvc-val", False, MODES, True), ("gvc-val", True, MODES, True)]
    plan += [("ecbplus", False, ("dated",), False), ("uci-news-head", False, MODES, False)]
    for name, headlines, modes, sliced in plan:
        folder = data / name
        if not folder.is_dir():
            continue
        original = [
            json.loads(line) for line in (folder / "docs.jsonl").read_text(encoding="utf-8").splitlines() if line
        ]
        gold = read_gold(folder / "gold.jsonl")
        label = f"{name} headlines" if headlines else name
        for mode in modes:
            rows = variant_rows(original, mode, headlines)
            one = measure_variant(rows, gold, [rows], config, work)
            results.append({"set": label, "dates": mode, **one})
            print(f"{label:22s} {mode:8s} one run   P {one['bcubed_precision']:.4f} R {one['bcubed_recall']:.4f} F1 {one['bcubed_f1']:.4f}", flush=True)  # fmt: skip
            if sliced and slices > 1:
                parts = measure_variant(rows, gold, time_slices(original, rows, slices), config, work)
                results.append({"set": label, "dates": mode, **parts})
                print(f"{label:22s} {mode:8s} {parts['runs']} runs  P {parts['bcubed_precision']:.4f} R {parts['bcubed_recall']:.4f} F1 {parts['bcubed_f1']:.4f}", flush=True)  # fmt: skip
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="folder of the labelled sets (../shared/data)")
    parser.add_argument("--slices", type=int, default=12)
    parser.add_argument("--config", help="TOML config (default: the built-in defaults)")
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        results = measure_all(args.data, args.slices, load_config(args.config), Path(work))
    rows = [
        [r["set"], r["dates"], "one run" if r["runs"] == 1 else f"{r['runs']} time slices", r["bcubed_precision"], r["bcubed_recall"], r["bcubed_f1"]]
        for r in results
    ]  # fmt: skip
    text = "\n".join(
        [
            f"# Time as evidence: dated, partly dated and undated reports ({machine()['date']})",
            "",
            "dates: `dated` as published, `third` every third report's date removed, `undated` all removed.",
            "",
            markdown_table(["set", "dates", "runs", "BCubed P", "BCubed R", "BCubed F1"], rows),
        ]
    )
    write_results(args.out, "time-evidence", {"machine": machine(), "results": results}, text)


if __name__ == "__main__":
    main()

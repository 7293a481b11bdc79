"""`make bench`, part 1: storyclust against simple baselines and against a bare encode, on labelled sets.

For each set, in one run: the bare sentence-transformers fp32 encode (the yardstick) and a cold
`storyclust run` (fresh database, whole process, model load included) alternate `--repeats` times and the
medians are compared; then storyclust with each embedding backend is scored, and each baseline runs on the
vectors of the bare encode. Every time and peak memory is of a whole child process.

    python -m bench.compare ../shared/data/uci-news-head ../shared/data/ecbplus
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.baselines import METHODS
from bench.common import LabelledSet, Measured, load_set, machine, markdown_table, measure, measured_run, stage_totals
from bench.slices import memberships
from pipeline.config import EmbedConfig
from pipeline.embed import resolved_backend
from pipeline.evaluate import score

PYTHON = sys.executable
DEFAULT = EmbedConfig().backend
BACKENDS = tuple(dict.fromkeys((DEFAULT, "onnx", "onnx-int8", "torch", "torch-bf16")))  # the default first


def storyclust_run(docs: Path, db: Path, backend: str, work: Path) -> Measured:
    config = work / f"{backend}.toml"
    config.write_text(f'[embed]\nbackend = "{backend}"\n', encoding="utf-8")
    db.unlink(missing_ok=True)
    return measured_run([docs], db, config)


def stage_seconds(result: Measured) -> dict[str, float]:
    return {stage: total["seconds"] for stage, total in stage_totals(result.stderr).items()}


def scores_of(db: Path, gold: dict[str, str]) -> dict[str, Any]:
    return score(memberships(db), gold).to_dict()


def backend_label(backend: str) -> str:
    resolved = resolved_backend(EmbedConfig(backend=backend))
    name = backend if resolved == backend else f"{backend} = {resolved} here"
    return f"storyclust ({name}{', default' if backend == DEFAULT else ''})"


def bench_set(folder: Path, repeats: int, work: Path, quick: bool = False) -> dict[str, Any]:
    labelled = load_set(folder)
    docs = folder / "docs.jsonl"
    db = work / f"{labelled.name}.duckdb"
    print(f"[{labelled.name}] warm-up run (builds the local ONNX export once)", file=sys.stderr)
    storyclust_run(docs, db, DEFAULT, work)

    bare, ours = [], []
    for attempt in range(repeats):
        print(f"[{labelled.name}] bare encode vs storyclust, round {attempt + 1}/{repeats}", file=sys.stderr)
        bare.append(measure([PYTHON, "-m", "bench.bare_encode", str(folder)], {"HF_HUB_OFFLINE": "1"}))
        ours.append(storyclust_run(docs, db, DEFAULT, work))
    bare_seconds = statistics.median(m.seconds for m in bare)
    ours_seconds = statistics.median(m.seconds for m in ours)
    median_run = sorted(ours, key=lambda m: m.seconds)[len(ours) // 2]

    rows: list[dict[str, Any]] = []
    for backend in BACKENDS[:1] if quick else BACKENDS:
        result = median_run if backend == DEFAULT else storyclust_run(docs, db, backend, work)
        stages = stage_seconds(result)
        rows.append(
            {
                "method": backend_label(backend),
                **scores_of(db, labelled.gold),
                "embed_seconds": stages.get("embed"),
                "other_seconds": round(sum(v for k, v in stages.items() if k != "embed"), 2),
                "total_seconds": ours_seconds if backend == DEFAULT else result.seconds,
                "peak_mb": result.peak_mb,
                "stage_seconds": stages,
            }
        )

    vectors = work / f"{labelled.name}.npy"
    if quick:
        return summary(labelled, bare, ours, rows)
    measure([PYTHON, "-m", "bench.bare_encode", str(folder), "--save", str(vectors)], {"HF_HUB_OFFLINE": "1"})
    for method, (title, _) in METHODS.items():
        print(f"[{labelled.name}] baseline {method}", file=sys.stderr)
        result = measure([PYTHON, "-m", "bench.baselines", method, str(folder), "--vectors", str(vectors)])
        if result.returncode != 0:
            rows.append({"method": title, "error": (result.stderr.strip().splitlines() or ["failed"])[-1]})
            continue
        output = json.loads(result.stdout)
        predicted = {i: str(label) for i, label in zip(labelled.ids, output["labels"], strict=True)}
        embed = 0.0 if method.startswith("minhash") else bare_seconds
        rows.append(
            {
                "method": title,
                **score(predicted, labelled.gold).to_dict(),
                "embed_seconds": embed,
                "other_seconds": output["cluster_seconds"],
                "total_seconds": round(embed + result.seconds, 2),
                "peak_mb": max(result.peak_mb, statistics.median(m.peak_mb for m in bare) if embed else 0.0),
            }
        )
    return summary(labelled, bare, ours, rows)


def summary(
    labelled: LabelledSet, bare: list[Measured], ours: list[Measured], rows: list[dict[str, Any]]
) -> dict[str, Any]:
    ratio = statistics.median(m.seconds for m in ours) / statistics.median(m.seconds for m in bare)
    return {
        "set": labelled.name,
        "items": len(labelled.ids),
        "bare_encode_seconds": [m.seconds for m in bare],
        "storyclust_seconds": [m.seconds for m in ours],
        "ratio_to_bare_encode": round(ratio, 3),
        "rows": rows,
    }


def render(results: list[dict[str, Any]], info: dict[str, Any]) -> str:
    parts = [
        f"# storyclust benchmark, {info['date']}",
        "",
        f"Machine: {info['cpu']}, {info['cpus']} CPUs, {info['memory_gb']} GB; {info['platform']}; "
        f"Python {info['python']}.",
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in info["versions"].items() if v) + ".",
        "",
    ]
    for result in results:
        parts += [
            f"## {result['set']} ({result['items']} items)",
            "",
            f"Cold storyclust run (fresh db, whole process, model load included) vs bare sentence-transformers "
            f"fp32 encode (whole process), alternated, median of {len(result['storyclust_seconds'])}: "
            f"**{statistics.median(result['storyclust_seconds']):.1f} s vs "
            f"{statistics.median(result['bare_encode_seconds']):.1f} s = "
            f"{result['ratio_to_bare_encode']:.2f}×** (runs: {result['storyclust_seconds']} vs "
            f"{result['bare_encode_seconds']}).",
            "",
            "Baselines use the bare encode's vectors; their embed seconds are the bare encode's median (whole "
            "process). Peak memory is the largest resident set of the method's processes.",
            "",
        ]
        header = [
            "method",
            "BCubed P",
            "BCubed R",
            "BCubed F1",
            "ARI",
            "embed s",
            "other stages s",
            "total s",
            "peak MB",
        ]
        table = []
        for row in result["rows"]:
            if "error" in row:
                table.append([row["method"], "failed: " + row["error"], "", "", "", "", "", "", ""])
                continue
            table.append(
                [
                    row["method"],
                    row["bcubed_precision"],
                    row["bcubed_recall"],
                    row["bcubed_f1"],
                    row["ari"],
                    row["embed_seconds"],
                    row["other_seconds"],
                    row["total_seconds"],
                    row["peak_mb"],
                ]
            )
        parts += [markdown_table(header, table), ""]
        ours = result["rows"][0]
        parts += [
            "storyclust seconds per stage (median cold run): "
            + ", ".join(f"{k} {v:.2f}" for k, v in ours["stage_seconds"].items())
            + ".",
            "",
        ]
    return "\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sets", nargs="+", type=Path, help="folders with docs.jsonl and gold.jsonl")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    parser.add_argument("--quick", action="store_true", help="the default backend against the bare encode only")
    args = parser.parse_args()
    info = machine()
    with tempfile.TemporaryDirectory() as work:
        results = [bench_set(folder, args.repeats, Path(work), args.quick) for folder in args.sets]
    args.out.mkdir(parents=True, exist_ok=True)
    text = render(results, info)
    name = "compare-quick" if args.quick else "compare"
    (args.out / f"{name}.md").write_text(text + "\n", encoding="utf-8")
    (args.out / f"{name}.json").write_text(json.dumps({"machine": info, "results": results}, indent=2) + "\n")
    print(text)


if __name__ == "__main__":
    main()

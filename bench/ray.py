"""`make bench-ray`: the Ray engine against the local engine on this machine.

1. Embedding throughput: the embed stage over real texts (uci-news-head contents), in this process (the
   local engine) and as Ray Data actor pools of 1 and 2 workers on a Ray instance started here. Each Ray
   figure is one `map` call, actor start and model load included, and also without the load (the local
   load time subtracted), the rate a long archive run approaches.
2. Agreement: a 50k-item, 100-day stream (`bench.stream`, vectors computed once and seeded into each fresh
   database, so the runs compare clustering, not embedding), in time partitions of `--partition-items`
   (each a Ray task on the Ray engine, stitched by the open-story rule), by the local and the Ray engine:
   BCubed F1 of one labelling against the other, and each against the stream's gold stories. The local
   engine over the whole stream as one batch is run too, to show what partitioning itself changes.
3. Per-item costs of each stage from those runs, the inputs of docs/ray.md's scaling plan.

    python -m bench.ray --data ../shared/data
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow as pa

from bench.common import load_set, machine, measure, stage_totals, write_results
from bench.scale import CACHE, seed_database, vector_cache
from bench.slices import memberships
from bench.stream import generate, templates_from, write_jsonl
from pipeline.config import Config, load_config
from pipeline.embed import EmbedStage
from pipeline.evaluate import score


def embed_throughput(texts: list[str], config: Config, workers: list[int]) -> dict[str, Any]:
    """Texts per second of the embed stage: local, and on a local Ray instance with each worker count."""
    table = pa.table({"text": texts})
    stage = EmbedStage(config.embed)
    start = time.perf_counter()
    stage(pa.table({"text": texts[:8]}))  # loads the model
    load = time.perf_counter() - start
    start = time.perf_counter()
    stage(table)
    local = time.perf_counter() - start
    result: dict[str, Any] = {
        "texts": len(texts),
        "model_load_s": round(load, 2),
        "local": {"seconds": round(local, 2), "texts_per_s": round(len(texts) / local, 1)},
    }
    import ray

    from pipeline.ray_engine import RayEngine

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        for count in workers:
            engine = RayEngine(_with_engine(config, embed_workers=count))
            engine.map(
                EmbedStage(config.embed), pa.table({"text": texts[:64]}), model=True
            )  # warm the workers' imports
            start = time.perf_counter()
            engine.map(EmbedStage(config.embed), table, model=True)
            seconds = time.perf_counter() - start
            steady = max(seconds - load, 1e-6)
            result[f"ray_{count}"] = {
                "seconds": round(seconds, 2),
                "texts_per_s": round(len(texts) / seconds, 1),
                "texts_per_s_without_model_load": round(len(texts) / steady, 1),
                "vs_local": round(local / seconds, 2),
            }
    finally:
        ray.shutdown()
    return result


def _with_engine(config: Config, **values: Any) -> Config:
    import dataclasses

    return dataclasses.replace(config, engine=dataclasses.replace(config.engine, **values))


def agreement(data: Path, items: int, days: float, partition_items: int, config: Config, seed: int) -> dict[str, Any]:
    """Local one-batch vs Ray partitioned (and local partitioned) on a dated stream; see the module doc."""
    templates = templates_from([data / "uci-news-head", data / "ecbplus"])
    records, gold_rows = generate(items, templates, seed, items_per_day=items / days)
    gold = {row["id"]: row["story"] for row in gold_rows}
    CACHE.mkdir(parents=True, exist_ok=True)
    stream = CACHE / f"stream-{items}-{int(days)}d-seed{seed}.jsonl"
    if not stream.exists():
        write_jsonl(records, stream)
    index, vectors, _ = vector_cache(stream, config)
    capped = f"[run]\nmax_items = 100000000\n[engine]\npartition_items = {partition_items}\n"
    runs = {
        f"local engine, partitions of {partition_items}": capped,
        f"ray engine, partitions of {partition_items}": capped + 'name = "ray"\n',
        "local engine, one batch": "[run]\nmax_items = 100000000\n[engine]\npartition_items = 100000000\n",
    }
    labels: dict[str, dict[str, str]] = {}
    rows: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as work:
        for name, text in runs.items():
            config_path = Path(work) / "config.toml"
            config_path.write_text(text, encoding="utf-8")
            db = Path(work) / "stream.duckdb"
            db.unlink(missing_ok=True)
            seed_database(db, stream, config, index, vectors)
            command = [sys.executable, "-m", "pipeline.cli", "run", str(stream), "--db", str(db), "-q"]
            command += ["--log-format", "json", "--config", str(config_path)]
            print(f"[bench-ray] {name}", file=sys.stderr)
            result = measure(command, {"HF_HUB_OFFLINE": "1"})
            if result.returncode != 0:
                raise SystemExit(f"storyclust run failed ({name}): {result.stderr.strip().splitlines()[-1:]}")
            stages = {stage: total["seconds"] for stage, total in stage_totals(result.stderr).items()}
            labels[name] = memberships(db)
            quality = score(labels[name], gold)
            rows[name] = {
                "process_seconds": result.seconds,
                "peak_mb": result.peak_mb,
                "stage_seconds": stages,
                "ms_per_item": {stage: round(1000 * s / items, 3) for stage, s in stages.items()},
                "vs_gold": _bcubed(quality),
            }
    local, distributed, whole = list(runs)
    pairs = {
        f"{distributed} vs {local}": _bcubed(score(labels[distributed], labels[local])),
        f"{whole} vs {local}": _bcubed(score(labels[whole], labels[local])),
    }
    return {"items": items, "days": days, "partition_items": partition_items, "runs": rows, "agreement": pairs}


def _bcubed(scores: Any) -> dict[str, float]:
    return {"p": scores.bcubed_precision, "r": scores.bcubed_recall, "f1": scores.bcubed_f1}


def real_texts(data: Path, count: int, config: Config) -> list[str]:
    """The first `count` texts of uci-news-head, as long as the model sees them."""
    return [text[: config.embed.max_chars] for text in load_set(data / "uci-news-head").texts[:count]]


def render(result: dict[str, Any]) -> str:
    embed, agree = result["embed"], result["agreement"]
    lines = [
        f"# Ray engine vs local engine, {result['machine']['when']}",
        "",
        f"Machine: {result['machine']['summary']}.",
        "",
        f"## Embed stage throughput ({embed['texts']} uci-news-head texts, onnx backend)",
        "",
        "| engine | seconds | texts/s | texts/s without model load | vs local |",
        "|---|---|---|---|---|",
        f"| local (this process) | {embed['local']['seconds']} | {embed['local']['texts_per_s']} | | 1.00 |",
    ]
    for key, row in embed.items():
        if key.startswith("ray_"):
            lines.append(
                f"| Ray, {key[4:]} worker(s) | {row['seconds']} | {row['texts_per_s']} | "
                f"{row['texts_per_s_without_model_load']} | {row['vs_local']} |"
            )
    lines += [
        "",
        f"Model load (per worker, once per map call): {embed['model_load_s']} s.",
        "",
        f"## Agreement on a {agree['items']}-item, {agree['days']:.0f}-day stream",
        "",
        "Vectors seeded into each fresh database (clustering compared, not embedding).",
        "",
        "| run | BCubed P vs gold | R | F1 | process s | peak MB |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in agree["runs"].items():
        gold = row["vs_gold"]
        lines.append(
            f"| {name} | {gold['p']:.4f} | {gold['r']:.4f} | {gold['f1']:.4f} | {row['process_seconds']} | {row['peak_mb']} |"
        )
    lines += ["", "| labelling vs labelling | BCubed P | R | F1 |", "|---|---|---|---|"]
    for name, row in agree["agreement"].items():
        lines.append(f"| {name} | {row['p']:.4f} | {row['r']:.4f} | **{row['f1']:.4f}** |")
    lines += ["", "Milliseconds per item by stage:", "", "| run | " + " | ".join(_stages(agree)) + " |"]
    lines.append("|---|" + "---|" * len(_stages(agree)))
    for name, row in agree["runs"].items():
        lines.append(f"| {name} | " + " | ".join(str(row["ms_per_item"].get(s, "")) for s in _stages(agree)) + " |")
    return "\n".join(lines) + "\n"


def _stages(agree: dict[str, Any]) -> list[str]:
    return list(dict.fromkeys(stage for row in agree["runs"].values() for stage in row["ms_per_item"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--items", type=int, default=50000)
    parser.add_argument("--days", type=float, default=100.0)
    parser.add_argument("--partition-items", type=int, default=5000)
    parser.add_argument("--embed-texts", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args()
    config = load_config(None)
    info = machine()
    result = {
        "machine": {"when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "summary": _summary(info), **info},
        "embed": embed_throughput(real_texts(args.data, args.embed_texts, config), config, [1, 2]),
        "agreement": agreement(args.data, args.items, args.days, args.partition_items, config, args.seed),
    }
    write_results(args.out, "ray", result, render(result))


def _summary(info: dict[str, Any]) -> str:
    return ", ".join(f"{key} {value}" for key, value in info.items() if not isinstance(value, dict))


if __name__ == "__main__":
    main()

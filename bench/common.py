"""Shared by the benchmarks: labelled sets, timed child processes, machine and version records."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import tempfile
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

PACKAGES = [
    "storyclust",
    "ray",
    "torch",
    "sentence-transformers",
    "onnxruntime",
    "hdbscan",
    "datasketch",
    "duckdb",
    "numpy",
    "scikit-learn",
    "faiss-cpu",
    "bertopic",
]


@dataclass
class LabelledSet:
    name: str
    ids: list[str]
    texts: list[str]  # title and body as read, joined: what a bare encode or a baseline sees
    gold: dict[str, str]


def load_set(folder: Path) -> LabelledSet:
    ids, texts = [], []
    for line in (folder / "docs.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            ids.append(str(row["id"]))
            texts.append(f"{row.get('title') or ''}\n{row.get('text') or ''}".strip())
    gold = {}
    for line in (folder / "gold.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            gold[str(row["id"])] = str(row["story"])
    return LabelledSet(folder.name, ids, texts, gold)


@dataclass
class Measured:
    seconds: float
    peak_mb: float
    returncode: int
    stdout: str
    stderr: str


def measure(command: list[str], env: dict[str, str] | None = None) -> Measured:
    """Wall seconds and peak resident memory of one whole child process.

    The peak is the child's own high-water mark (VmHWM in /proc, sampled until it exits): wait4's ru_maxrss
    would count the pages the child shared with this (large) benchmark process before exec. A peak held for
    less than the sampling interval (5 ms in the first second, then 50 ms) can be missed.
    """
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=err, text=True, env={**os.environ, **(env or {})})
        peak_kb = 0
        while True:
            peak_kb = max(peak_kb, _high_water_kb(process.pid))
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            time.sleep(0.005 if time.perf_counter() - start < 1 else 0.05)
        seconds = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        peak_mb = peak_kb / 1024 if peak_kb else usage.ru_maxrss / 1024
        return Measured(round(seconds, 2), round(peak_mb, 1), process.returncode, out.read(), err.read())


def measured_run(inputs: list[Path], db: Path, config: Path | None = None, what: str = "") -> Measured:
    """`storyclust run` on `inputs` as a whole child process (JSON log on stderr, for `stage_totals`), measured;
    a failed run stops the benchmark with its last line."""
    import sys

    command = [sys.executable, "-m", "pipeline.cli", "run", *map(str, inputs), "--db", str(db), "-q"]
    command += ["--log-format", "json"] + (["--config", str(config)] if config else [])
    result = measure(command, {"HF_HUB_OFFLINE": "1"})
    if result.returncode != 0:
        raise SystemExit(f"storyclust run failed{what}: {result.stderr.strip().splitlines()[-1:]}")
    return result


def _high_water_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def machine() -> dict[str, object]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        memory_kb = int(Path("/proc/meminfo").read_text().split()[1])
    except OSError:
        memory_kb = 0
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "memory_gb": round(memory_kb / 2**20, 1),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "versions": {name: _version(name) for name in PACKAGES},
    }


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def markdown_table(header: list[str], rows: list[list[object]]) -> str:
    def cell(value: object) -> str:
        if isinstance(value, float):
            return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
        return "" if value is None else str(value)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def write_results(out: Path, stem: str, result: object, text: str) -> None:
    """`stem.json` (the numbers) and `stem.md` (the report) under `out`, and the report on stdout."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    (out / f"{stem}.md").write_text(text + "\n", encoding="utf-8")
    print(text)


def uncapped_config(folder: Path) -> Path:
    """A config file that lifts run.max_items and engine.partition_items: benchmarks of one big batch
    measure that batch, not the cap or the partitions."""
    path = folder / "uncapped.toml"
    path.write_text("[run]\nmax_items = 100000000\n[engine]\npartition_items = 100000000\n", encoding="utf-8")
    return path


def stage_totals(stderr: str) -> dict[str, dict[str, float]]:
    """Seconds and CPU seconds (summed) and peak memory (largest) per stage from a run's JSON log: a run over
    several time partitions logs a stage once per partition."""
    stages: dict[str, dict[str, float]] = {}
    for line in stderr.splitlines():
        row = json.loads(line) if line.startswith("{") else {}
        if "seconds" in row:
            total = stages.setdefault(row["stage"], {"seconds": 0.0, "cpu_seconds": 0.0, "peak_mb": 0.0})
            total["seconds"] = round(total["seconds"] + row["seconds"], 3)
            total["cpu_seconds"] = round(total["cpu_seconds"] + row.get("cpu_seconds", 0.0), 3)
            total["peak_mb"] = max(total["peak_mb"], row.get("peak_mb") or 0.0)
    return stages


def copy_store(source: Path, target: Path) -> None:
    """A store to run on: the database file copied, its segments linked (never changed by a run). Copying the
    file alone would leave it naming segments it cannot find."""
    import shutil

    from pipeline.store.segments import segment_folder

    shutil.copyfile(source, target)
    folder = segment_folder(source)
    if folder.is_dir():
        linked = segment_folder(target)
        linked.mkdir()
        for path in folder.iterdir():
            (linked / path.name).symlink_to(path)


def store_bytes(db: Path) -> int:
    """Bytes of a store: its database file and its segments."""
    from pipeline.store.segments import segment_folder

    return db.stat().st_size + sum(p.stat().st_size for p in segment_folder(db).glob("*")) if db.exists() else 0

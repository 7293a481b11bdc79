# Set-up and common tasks. `make run` and `make test` work on a fresh clone with nothing installed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SAMPLE := samples/ukraine-kyiv-nato.txt
DATA ?= ../shared/data

.PHONY: run test lint eval bench bench-compare bench-cold bench-incremental bench-scale bench-quality bench-labels bench-soak bench-intake bench-archive bench-ray clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# torch is installed first and pinned, so pip takes the CPU build and never a multi-GB CUDA one.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[test]'
	$(BIN)/python -m compileall -q pipeline  # bytecode now: where PYTHONDONTWRITEBYTECODE is set, runs never write it
	touch $(STAMP)

# The report test opens a real page in headless Chromium: the Debian package, installed once (root, or sudo).
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
$(CHROMIUM):
	$(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

run: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/storyclust run $(SAMPLE) --db data/sample.duckdb

test: $(STAMP) $(CHROMIUM)
	$(BIN)/ruff check pipeline tests bench
	HF_HUB_OFFLINE=1 $(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check pipeline tests bench
	$(BIN)/ruff format --check pipeline tests bench

# Quality on the labelled sets (each into its own fresh database), then with every third and every date removed
# and in 12 cron-sized time slices (bench/results/time-evidence.md).
eval: $(STAMP)
	for set in gvc-val ecbplus uci-news-head; do \
		rm -f data/eval-$$set.duckdb; \
		HF_HUB_OFFLINE=1 $(BIN)/storyclust run $(DATA)/$$set/docs.jsonl --db data/eval-$$set.duckdb -q && \
		$(BIN)/storyclust eval --db data/eval-$$set.duckdb --gold $(DATA)/$$set/gold.jsonl --json; \
	done
	HF_HUB_OFFLINE=1 $(BIN)/python -m bench.time_evidence $(DATA) --slices 12

# Benchmarks (not part of `make test`): results as Markdown and JSON under bench/results/.
BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[test,bench]'
	touch $(BENCH_STAMP)

bench: bench-compare bench-incremental bench-scale bench-quality bench-labels bench-soak bench-intake bench-archive bench-ray

bench-compare: $(BENCH_STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python -m bench.compare $(DATA)/uci-news-head $(DATA)/ecbplus $(DATA)/gvc-val

# The cold run against the bare encode only (default backend, no baselines): bench/results/compare-quick.md.
bench-cold: $(BENCH_STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python -m bench.compare $(DATA)/uci-news-head $(DATA)/ecbplus $(DATA)/gvc-val --quick

bench-incremental: $(BENCH_STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python -m bench.slices $(DATA)/uci-news-head --slices 12
	HF_HUB_OFFLINE=1 $(BIN)/python -m bench.slices $(DATA)/gvc-val --slices 12

bench-scale: $(BENCH_STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python -m bench.scale 20000 50000 200000 --data $(DATA)

# Quality alone, with the other labelled sets, in a 50k-item stream, and of the headlines (uses bench-scale's vectors).
bench-quality: $(BENCH_STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python -m bench.quality $(DATA) --stream 50000

# The canonical headline against human-style event labels of the gold stories (bench/labels/).
bench-labels: $(BENCH_STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python -m bench.labels $(DATA)

# Readers during cron runs: 10 runs while one reader holds the file open and another polls it.
bench-soak: $(BENCH_STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python -m bench.soak $(DATA)/uci-news-head --slices 10

# Peak memory of runs over a 1 GB JSON Lines file, a 1M-row CSV, a 1 GB .jsonl.gz and a 1 GB WARC.gz at the default
# run.max_items, and the WARC's extraction rate (pages/s).
bench-intake: $(BENCH_STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python -m bench.intake --data $(DATA)

# The Ray engine: embed throughput with 1 and 2 Ray workers vs local, and agreement on a 50k-item, 100-day stream.
# A run's cost against the store's size: 400 and 1,000 new items on stores of 20k, 100k and 1M older articles.
bench-archive: $(BENCH_STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python -m bench.archive --data $(DATA)

bench-ray: $(BENCH_STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python -m bench.ray --data $(DATA)

clean:
	rm -rf $(VENV) data .pytest_cache .ruff_cache

# amazon-polly-streaming: every developer and CI task. `make help` lists them.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PY      := .venv/bin/python
UPSTREAM_DIR := model/upstream
OVERLAYS := $(sort $(wildcard model/overlay/*.json))
MODEL   := model/polly-streaming.smithy.json
PARTITIONS := model/partitions.json
SRC     ?= $(firstword $(wildcard $(UPSTREAM_DIR)/*.json))
BOTOCORE ?= ../shared/reference/polly-2016-06-10.botocore-1.44.5.service-2.json
OPERATION ?= StartSpeechSynthesisStream
PYTEST_ARGS ?=
TRIM = $(PY) -m codegen.trim $(UPSTREAM_DIR)/$(notdir $(SRC)) $(addprefix --overlay ,$(OVERLAYS)) --operation $(OPERATION)

.PHONY: fuzz soak help demo setup setup-interop setup-bench bench bench-quick test pytest lint format typecheck model overlay generate check-generated check-model bench-codec emulator clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

setup: ## Install uv (PyPI) and the locked environment into .venv (never downloads Python)
	@scripts/bootstrap

demo: setup ## Start the emulator, synthesize "hello world, how are you today" (Matthew) into hello.mp3, stop it
	$(PY) scripts/demo.py

setup-interop: setup ## Install AWS's official clients (aws-sdk-polly venv, npm @aws-sdk/client-polly) for the interop tests
	@export UV_PYTHON=$$(scripts/find-python) UV_PYTHON_DOWNLOADS=never; \
	test -x .tools/interop-py/bin/python || .tools/bin/uv venv --quiet .tools/interop-py; \
	.tools/bin/uv pip sync --quiet --python .tools/interop-py/bin/python tests/interop/python/requirements.txt
	@npm ci --prefix tests/interop/node --no-audit --no-fund --loglevel=error

test: setup setup-interop lint typecheck check-model check-generated ## Set up, then run every check and the whole test suite (what CI runs)
	POLLY_INTEROP_REQUIRED=1 $(PY) -m pytest $(PYTEST_ARGS)

pytest: setup ## Run the test suite only (PYTEST_ARGS=... to pass options)
	$(PY) -m pytest $(PYTEST_ARGS)

emulator: setup ## Run the local Polly emulator in the foreground (prints endpoint, CA and env to export)
	$(PY) -m amazon_polly_streaming.testing

lint: setup ## ruff check and ruff format --check
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: setup ## Format and autofix with ruff (never touches generated/: regenerate instead)
	$(PY) -m ruff check --fix --exclude generated .
	$(PY) -m ruff format --exclude generated .

typecheck: setup ## mypy --strict and pyright (strict) on src/, generated/, codegen/ and tests/typing/
	$(PY) -m mypy
	.venv/bin/pyright

model: setup ## Trim a full Polly Smithy model: make model SRC=<full Smithy JSON AST>, then regenerate
	@test -n "$(SRC)" || { echo "usage: make model SRC=<full Polly Smithy JSON AST>" >&2; exit 2; }
	@if [ "$(abspath $(SRC))" != "$(abspath $(UPSTREAM_DIR)/$(notdir $(SRC)))" ]; then \
	  rm -f $(UPSTREAM_DIR)/*.json; cp "$(SRC)" $(UPSTREAM_DIR)/; chmod 644 $(UPSTREAM_DIR)/*.json; fi
	$(TRIM) --out $(MODEL) --partitions-out $(PARTITIONS)
	$(MAKE) --no-print-directory generate

overlay: setup ## Redraft the overlay from botocore's model: make overlay BOTOCORE=<service-2.json>
	$(PY) -m codegen.overlay_from_botocore $(BOTOCORE) $(UPSTREAM_DIR)/$(notdir $(SRC)) --operation $(OPERATION) --out model/overlay/start-speech-synthesis-stream.json

generate: setup ## Regenerate generated/ from the model (deterministic; never edit generated/ by hand)
	$(PY) -m codegen.generate --model $(MODEL) --partitions $(PARTITIONS)

check-generated: setup ## Regenerate into a temporary directory; fail on any difference from generated/
	$(PY) -m codegen.generate --check --model $(MODEL) --partitions $(PARTITIONS)

check-model: setup ## Re-trim from model/upstream + model/overlay; fail unless it equals the checked-in model
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	$(TRIM) --out "$$tmp/model.json" --partitions-out "$$tmp/partitions.json"; \
	cmp "$$tmp/model.json" $(MODEL) && cmp "$$tmp/partitions.json" $(PARTITIONS) \
	  && echo "check-model: $(MODEL) and $(PARTITIONS) are reproducible from their inputs" \
	  || { echo "check-model: checked-in model differs; run make model" >&2; exit 1; }

setup-bench: setup-interop ## Install capo-polly (community client) into .tools/capo-py for the benchmarks
	@export UV_PYTHON=$$(scripts/find-python) UV_PYTHON_DOWNLOADS=never; \
	test -x .tools/capo-py/bin/python || .tools/bin/uv venv --quiet .tools/capo-py; \
	.tools/bin/uv pip sync --quiet --python .tools/capo-py/bin/python benchmarks/requirements-capo.txt

bench: setup-bench ## Benchmark vs aws-sdk-polly, @aws-sdk/client-polly, capo-polly, voice-agent rows included (~4 min) -> benchmarks/results/latest.*
	$(PY) benchmarks/run.py

bench-quick: setup-bench ## Benchmark smoke run (<1 min) -> benchmarks/results/quick/
	$(PY) benchmarks/run.py --quick

fuzz: setup ## Coverage-guided fuzzing (atheris) of the response path: 1,000,000 inputs (FUZZ_RUNS=...)
	$(PY) fuzz/fuzz_response.py -runs=$${FUZZ_RUNS:-1000000} -max_len=4096 -rss_limit_mb=1024 -timeout=5

soak: setup ## 10,000 streams through the pool (faults, cancellations, barge-in, concurrency; emulator in a child process); client fds/threads/RSS must stay flat
	$(PY) scripts/soak.py --streams $${SOAK_STREAMS:-10000}

bench-codec: setup ## Event-stream codec throughput: ours vs smithy-aws-event-stream
	$(PY) benchmarks/codec_throughput.py

clean: ## Remove caches and build output (keeps .venv and .tools)
	rm -rf .mypy_cache .ruff_cache .pytest_cache .hypothesis build dist
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

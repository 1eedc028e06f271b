# rcf_fast developer targets. `make demo` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.deps-stamp

.PHONY: help venv develop release demo test test-rust test-python bench bench-kinesis profile format lint all clean

help:  ## list targets
	@grep -E '^[a-z-]+:.*## ' Makefile | sed 's/:.*## /\t/'

$(STAMP): pyproject.toml requirements-test.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip "setuptools<81" wheel
	$(PIP) install -q "maturin>=1.9.4,<2.0" numpy matplotlib
	$(PIP) install -q -r requirements-test.txt
	touch $(STAMP)

venv: $(STAMP)  ## create the virtual environment with every dependency

develop: $(STAMP)  ## build the extension (release mode) into the venv
	rm -f python/rcf_fast/_rcf*.so
	VIRTUAL_ENV=$(abspath $(VENV)) PATH=$(abspath $(VENV))/bin:$$PATH \
		$(VENV)/bin/maturin develop --release -q

release: $(STAMP)  ## build a wheel into dist/
	$(VENV)/bin/maturin build --release -o dist

demo: develop  ## NYC taxi through the forest (out/nyc_taxi.png), then the Kinesis pipeline on a local moto server
	$(PY) examples/nyc_taxi_demo.py
	PATH=$(abspath $(VENV))/bin:$$PATH $(PY) examples/kinesis_demo.py

test-rust:  ## cargo tests of the core
	cargo test --release -p rcf-core

test-python: develop  ## pytest (all tiers)
	$(PY) -m pytest -q

test: test-rust test-python  ## all Rust and Python tests

bench: develop  ## pytest-benchmark side by side with krcf, rcf3, rrcf
	$(PY) -m pytest benches --benchmark-enable --benchmark-only -q \
		--benchmark-columns=min,median,mean,ops,rounds --benchmark-sort=name

bench-kinesis: develop  ## Kinesis layer: peak RSS and error bytes per hostile record class, good records/s with 1% hostile
	$(PY) -m pytest benches/test_bench_kinesis.py --benchmark-enable -q -s \
		--benchmark-columns=min,median,mean,rounds --benchmark-sort=name

profile:  ## dev tools (rust/rcf-tools): time_min best-of-REPS and score checksums, 1-d and 16-d
	cargo build --profile profiling -p rcf-tools
	for d in 1 16; do for m in stream batch score; do \
		DIMS=$$d MODE=$$m REPS=$${REPS:-20} target/profiling/time_min || exit 1; done; done
	@echo "other tools: ls rust/rcf-tools/src/bin (each file's header says how to run it)"

format:  ## cargo fmt + ruff format
	cargo fmt --all
	$(VENV)/bin/ruff format python tests benches examples

lint: develop  ## rustfmt, clippy, ruff check and format, mypy, stubtest, no module cycle in rcf-core
	cargo fmt --all -- --check
	cargo clippy --release --all-targets -- -D warnings
	$(VENV)/bin/ruff check python tests benches examples
	$(VENV)/bin/ruff format --check python tests benches examples
	$(VENV)/bin/python -m mypy python/rcf_fast
	$(VENV)/bin/python -m mypy tests
	$(VENV)/bin/python -m mypy.stubtest rcf_fast._rcf --allowlist stubtest-allowlist.txt
	$(PY) scripts/modgraph.py rust/rcf-core/src

all: lint test  ## lint and test

clean:
	rm -rf target $(VENV) python/rcf_fast/_rcf*.so out

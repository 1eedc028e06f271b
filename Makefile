# rcf_fast developer targets. `make demo` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.deps-stamp

.PHONY: help venv develop release demo test test-rust test-python bench format lint all clean flink-app

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

# The Kinesis connector for Flink 2.x (Maven Central; not on PyPI). Pick the release built for the
# Flink runtime the application runs on (docs/scale_out.md).
FLINK_KINESIS_JAR := flink-sql-connector-aws-kinesis-streams-6.0.0-2.0.jar
FLINK_KINESIS_JAR_URL ?= https://repo1.maven.org/maven2/org/apache/flink/flink-sql-connector-aws-kinesis-streams/6.0.0-2.0/$(FLINK_KINESIS_JAR)

flink-app: release  ## Managed Service for Apache Flink zip (dist/rcf-flink-app.zip; downloads the connector jar)
	rm -rf out/flink-app && mkdir -p out/flink-app/lib
	cp examples/flink/rcf_flink_job.py examples/flink/application_properties.json out/flink-app/
	$(PIP) install -q --no-deps --target out/flink-app/lib/site-packages dist/rcf_fast-*.whl
	curl -fsSL -o out/flink-app/lib/$(FLINK_KINESIS_JAR) $(FLINK_KINESIS_JAR_URL)
	rm -f dist/rcf-flink-app.zip
	cd out/flink-app && $(abspath $(PY)) -m zipfile -c $(abspath dist)/rcf-flink-app.zip *

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

format:  ## cargo fmt + ruff format
	cargo fmt --all
	$(VENV)/bin/ruff format python tests benches examples

lint: develop  ## ruff, mypy, stubtest, rustfmt, clippy
	cargo fmt --all -- --check
	cargo clippy --release --all-targets -- -D warnings
	$(VENV)/bin/ruff check python tests benches examples
	$(VENV)/bin/python -m mypy.stubtest rcf_fast._rcf --allowlist stubtest-allowlist.txt

all: lint test  ## lint and test

clean:
	rm -rf target $(VENV) python/rcf_fast/_rcf*.so out

# rcf_fast developer targets. `make demo` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.deps-stamp

.PHONY: help venv develop release demo test test-rust test-python bench bench-kinesis profile format lint all clean nab wheel wheel-test java flink-app

help:  ## list targets
	@grep -E '^[a-z-]+:.*## ' Makefile | sed 's/:.*## /\t/'

$(STAMP): pyproject.toml requirements-test.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip "setuptools<81" wheel
	$(PIP) install -q "maturin>=1.9.4,<2.0" numpy matplotlib
	$(PIP) install -q -r requirements-test.txt
	touch $(STAMP)

RRCF_SDIST := $(VENV)/sdists/rrcf-0.4.4.tar.gz
$(RRCF_SDIST): $(STAMP)  # rrcf's own test suite, run by tests/test_rrcf_upstream.py
	$(PIP) download -q --no-deps --no-binary :all: rrcf==0.4.4 -d $(VENV)/sdists

venv: $(STAMP) $(RRCF_SDIST)  ## create the virtual environment with every dependency

develop: $(STAMP) $(RRCF_SDIST)  ## build the extension (release mode) into the venv
	rm -f python/rcf_fast/_rcf*.so
	VIRTUAL_ENV=$(abspath $(VENV)) PATH=$(abspath $(VENV))/bin:$$PATH \
		$(VENV)/bin/maturin develop --release -q

release: wheel  ## same as wheel

# zig (from PyPI) links against glibc 2.17 for manylinux2014; maturin finds it as `python -m ziglang`.
$(VENV)/.zig-stamp: $(STAMP)
	$(PIP) install -q "ziglang>=0.13,<0.18"
	touch $@

wheel: $(VENV)/.zig-stamp  ## abi3 (CPython >= 3.9) manylinux2014 x86_64 wheel and the sdist into dist/
	rm -f dist/rcf_fast-*
	PATH=$(abspath $(VENV))/bin:$$PATH $(VENV)/bin/maturin build --release --zig \
		--compatibility manylinux2014 -o dist
	$(VENV)/bin/maturin sdist -o dist

WHEEL_PYTHONS ?= 3.9 3.13
wheel-test: wheel  ## install the wheel (no build) into fresh CPython 3.9 and 3.13 venvs, run the quick start
	bash .ci/wheel_test.sh $(WHEEL_PYTHONS)

java:  ## Java 17+ for the KCL test (apt-get installs it when missing and run as root)
	@java -version 2>&1 | grep -qE 'version "(1[7-9]|[2-9][0-9])' || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			apt-get update -q && apt-get install -y -q openjdk-17-jre-headless; \
		else echo "Java 17+ is needed for the KCL test: apt-get install openjdk-17-jre-headless" >&2; \
			exit 1; fi; }

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

test-python: develop java  ## pytest (all tiers)
	$(PY) -m pytest -q

test: test-rust test-python  ## all Rust and Python tests

bench: develop  ## benchmarks vs krcf, rcf3, rrcf; writes docs/benchmarks.md + .png and README's table
	mkdir -p out
	$(PY) -m pytest benches --benchmark-enable --benchmark-only -q \
		--benchmark-columns=min,median,mean,ops,rounds --benchmark-sort=name \
		--benchmark-json=out/bench.json
	$(PY) benches/report.py out/bench.json --md docs/benchmarks.md --png docs/benchmarks.png \
		--readme README.md

bench-kinesis: develop  ## Kinesis layer: peak RSS and error bytes per hostile record class, good records/s with 1% hostile
	$(PY) -m pytest benches/test_bench_kinesis.py --benchmark-enable -q -s \
		--benchmark-columns=min,median,mean,rounds --benchmark-sort=name

profile:  ## dev tools (rust/rcf-tools): time_min best-of-REPS and score checksums, 1-d and 16-d
	cargo build --profile profiling -p rcf-tools
	for d in 1 16; do for m in stream batch score; do \
		DIMS=$$d MODE=$$m REPS=$${REPS:-20} target/profiling/time_min || exit 1; done; done
	@echo "other tools: ls rust/rcf-tools/src/bin (each file's header says how to run it)"

NAB_DIR ?= ../shared/data/nab
nab: develop  ## NAB's score (3 profiles, ROC-AUC, window hit rate) of the forest and the detector on $(NAB_DIR)
	@test -f $(NAB_DIR)/labels/combined_windows.json || { echo "make nab: no NAB data at $(NAB_DIR) (expected data/**.csv and labels/combined_windows.json; set NAB_DIR=...)"; exit 2; }
	$(VENV)/bin/rcf-fast nab $(NAB_DIR) --detectors forest,detector,krcf

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
	rm -rf target $(VENV) python/rcf_fast/_rcf*.so out dist

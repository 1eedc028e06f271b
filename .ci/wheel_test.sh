#!/usr/bin/env bash
# Installs the wheel in dist/ WITHOUT building (pip --only-binary :all:) into a fresh venv of each
# CPython given (default: the oldest and newest supported, 3.9 and 3.13, from pyenv) and runs the
# README quick start (examples/quickstart.py) and `rcf-fast score` there. Called by `make wheel-test`.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
versions=("$@")
[[ ${#versions[@]} -gt 0 ]] || versions=(3.9 3.13)
wheel=$(ls dist/rcf_fast-*-cp39-abi3-manylinux2014_x86_64*.whl 2>/dev/null | sort | tail -n 1 || true)
if [[ -z "$wheel" ]]; then
    echo "wheel-test: no abi3 manylinux2014 wheel in dist/ (run make wheel)" >&2
    exit 1
fi
cargo_version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)
pyenv_root=${PYENV_ROOT:-$HOME/.pyenv}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# manylinux2014 means no glibc symbol newer than 2.17 (Amazon Linux 2 has 2.26).
"${PYTHON:-python3}" -m zipfile -e "$wheel" "$work/unpacked"
newest=$(objdump -T "$work"/unpacked/rcf_fast/_rcf*.so | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -n 1)
echo "== $(basename "$wheel"): newest glibc symbol $newest"
[[ "$(printf '%s\n' "$newest" GLIBC_2.17 | sort -V | tail -n 1)" == GLIBC_2.17 ]] || {
    echo "wheel-test: the extension needs $newest, more than manylinux2014's GLIBC_2.17" >&2
    exit 1
}
for v in "${versions[@]}"; do
    py=$(ls -d "$pyenv_root"/versions/"$v".*/bin/python"$v" 2>/dev/null | sort -V | tail -n 1 || true)
    if [[ -z "$py" ]] && command -v pyenv >/dev/null; then
        echo "wheel-test: CPython $v is not under $pyenv_root/versions; trying pyenv install $v" >&2
        pyenv install -s "$v" || true
        py=$(ls -d "$pyenv_root"/versions/"$v".*/bin/python"$v" 2>/dev/null | sort -V | tail -n 1 || true)
    fi
    if [[ -z "$py" ]]; then
        echo "wheel-test: FAILED: CPython $v not found (install it with pyenv: pyenv install $v)" >&2
        exit 1
    fi
    echo "== CPython $v ($py): install $(basename "$wheel") without building"
    "$py" -m venv "$work/venv$v"
    vpy="$work/venv$v/bin/python"
    "$vpy" -m pip install -q --disable-pip-version-check --only-binary :all: "$wheel"
    # Run from an empty directory, so `import rcf_fast` can only find the installed wheel.
    (
        cd "$work"
        "$vpy" - "$cargo_version" <<'PY'
import sys, rcf_fast
assert "site-packages" in rcf_fast.__file__, rcf_fast.__file__
assert rcf_fast.__version__ == sys.argv[1], (rcf_fast.__version__, sys.argv[1])
print(f"rcf_fast {rcf_fast.__version__} from {rcf_fast._rcf.__file__}")
PY
    )
    out=$(cd "$work" && "$vpy" "$repo/examples/quickstart.py")
    echo "$out"
    grep -q '^t=1500 ' <<<"$out" || { echo "wheel-test: quick start missed the spike at t=1500" >&2; exit 1; }
    rows=$(cd "$work" && "$work/venv$v/bin/rcf-fast" score "$repo/data/nyc_taxi.csv" --shingle-size 4 | wc -l)
    [[ "$rows" == 10321 ]] || { echo "wheel-test: rcf-fast score wrote $rows lines, expected 10321" >&2; exit 1; }
    echo "rcf-fast score: $rows lines"
done
# The sdist must build on its own (everything the Rust build needs is inside it).
sdist=$(ls dist/rcf_fast-*.tar.gz | tail -n 1)
echo "== building a wheel from $(basename "$sdist")"
"${PYTHON:-python3}" -m pip wheel -q --disable-pip-version-check --no-deps -w "$work/from-sdist" "$sdist"
ls "$work"/from-sdist/rcf_fast-*abi3*.whl
echo "wheel-test: $(( ${#versions[@]} + 1 )) passed, 0 failed"

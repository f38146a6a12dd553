#!/usr/bin/env bash
# genoquery's entry point for people and CI. Creates .venv and installs what it needs.
#   ./run.sh demo    simulate a 3-center cohort, ingest it, print real answers
#   ./run.sh test    install everything (venv, packages, Debian's htslib-test, bcftools, chromium) and run the tests
#   ./run.sh lint    ruff (style) and import-linter (layers), as CI runs them before the tests
#   ./run.sh bench   CI benchmark suite (pytest-benchmark)
#   ./run.sh lock    refresh requirements.lock to today's releases (then run the tests)
set -euo pipefail
cd "$(dirname "$0")"
VENV=${GENOQUERY_VENV:-.venv}
PY="$VENV/bin/python"

LOCK=requirements.lock  # exact versions CI passed with (./run.sh lock refreshes it)
SGKIT_LOCK=requirements-sgkit.lock  # sgkit's releases read only Zarr 2: a venv of their own, for one test
SGKIT_VENV=${GENOQUERY_SGKIT_VENV:-.venv-sgkit}
# Bytecode is compiled at install: where PYTHONDONTWRITEBYTECODE is set, every process otherwise
# recompiles pandas, numba and zarr on import (1.6 s of a first query's 2.3 s, measured).
SYNC_OPTIONS=(--quiet --compile-bytecode)

ensure_venv() {
    # The venv holds exactly the lock's packages plus genoquery itself (editable); redone when
    # pyproject.toml or the lock changes.
    if [ ! -x "$PY" ]; then
        python3 -m venv "$VENV"
    fi
    local stamp="$VENV/.installed-$( (cat pyproject.toml "$LOCK"; echo "${SYNC_OPTIONS[*]}") | sha256sum | cut -c1-16)"
    if [ ! -e "$stamp" ]; then
        if [ ! -x "$VENV/bin/uv" ]; then
            "$PY" -m pip install --quiet --disable-pip-version-check "$(grep -E '^uv==' "$LOCK" | cut -d' ' -f1)"
        fi
        "$VENV/bin/uv" pip sync "${SYNC_OPTIONS[@]}" --python "$PY" "$LOCK"
        "$VENV/bin/uv" pip install --quiet --python "$PY" --no-deps -e .
        rm -f "$VENV"/.installed-*
        touch "$stamp"
    fi
}

ensure_sgkit_venv() {
    # tests/test_store_format.py opens batches with sgkit in this venv (GENOQUERY_SGKIT_PYTHON).
    local stamp="$SGKIT_VENV/.installed-$( (cat "$SGKIT_LOCK"; echo "${SYNC_OPTIONS[*]}") | sha256sum | cut -c1-16)"
    if [ ! -e "$stamp" ]; then
        "$VENV/bin/uv" venv --quiet --allow-existing --python "$PY" "$SGKIT_VENV"
        "$VENV/bin/uv" pip sync "${SYNC_OPTIONS[@]}" --python "$SGKIT_VENV/bin/python" "$SGKIT_LOCK"
        rm -f "$SGKIT_VENV"/.installed-*
        touch "$stamp"
    fi
    export GENOQUERY_SGKIT_PYTHON="$SGKIT_VENV/bin/python"
}

ensure_debian_packages() {
    # Real-world VCF/BCF files (htslib-test) and bcftools with plugins, used by tests as oracles;
    # chromium (headless, driven by Playwright) for the browser tests of the variant browser.
    local missing=()
    for pkg in "$@"; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
        echo "note: cannot install ${missing[*]} (needs root and apt); the tests that use them will be skipped" >&2
        return 0
    fi
    apt-get update -qq >/dev/null || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null \
        || echo "note: apt-get could not install ${missing[*]}; the tests that use them will be skipped" >&2
}

case "${1:-}" in
    demo)
        ensure_venv
        shift
        exec "$PY" -m genoquery.demo "$@"
        ;;
    test)
        ensure_venv
        ensure_sgkit_venv
        ensure_debian_packages htslib-test bcftools plink2 chromium chromium-driver
        shift
        exec "$PY" -m pytest -q "$@"
        ;;
    lint)
        ensure_venv
        exec .ci/lint
        ;;
    lock)
        ensure_venv
        "$VENV/bin/uv" pip compile pyproject.toml --all-extras --universal --python-version 3.11 --upgrade \
            --quiet --custom-compile-command "./run.sh lock" -o "$LOCK"
        echo "sgkit==0.10.0" | "$VENV/bin/uv" pip compile - --universal --python-version 3.11 --upgrade \
            --quiet --custom-compile-command "./run.sh lock" -o "$SGKIT_LOCK"
        echo "wrote $LOCK; now run ./run.sh test and commit both if it passes"
        ;;
    bench)
        ensure_venv
        ensure_debian_packages bcftools plink2 wrk chromium
        shift
        exec "$PY" -m pytest benchmarks -q "$@"
        ;;
    *)
        sed -n '2,8p' "$0"
        exit 2
        ;;
esac

#!/usr/bin/env bash
# genoquery's entry point for people and CI. Creates .venv and installs what it needs.
#   ./run.sh demo    simulate a 3-center cohort, ingest it, print real answers
#   ./run.sh test    install everything (venv, packages, Debian's htslib-test + bcftools) and run the tests
#   ./run.sh bench   CI benchmark suite (pytest-benchmark)
set -euo pipefail
cd "$(dirname "$0")"
VENV=${GENOQUERY_VENV:-.venv}
PY="$VENV/bin/python"

ensure_venv() {
    if [ ! -x "$PY" ]; then
        python3 -m venv "$VENV"
    fi
    local stamp="$VENV/.installed-$(sha256sum pyproject.toml | cut -c1-16)-$1"
    if [ ! -e "$stamp" ]; then
        "$PY" -m pip install --quiet --disable-pip-version-check -e ".[$1]"
        touch "$stamp"
    fi
}

ensure_debian_packages() {
    # Real-world VCF/BCF files (htslib-test) and bcftools with plugins, used by tests as oracles.
    local missing=()
    for pkg in "$@"; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
        echo "note: cannot install ${missing[*]} (needs root and apt); the tests that use them will be skipped" >&2
        return 0
    fi
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

case "${1:-}" in
    demo)
        ensure_venv test
        shift
        exec "$PY" -m genoquery.demo "$@"
        ;;
    test)
        ensure_venv test
        ensure_debian_packages htslib-test bcftools plink2
        shift
        exec "$PY" -m pytest -q "$@"
        ;;
    bench)
        ensure_venv test,bench
        ensure_debian_packages bcftools plink2 wrk
        shift
        exec "$PY" -m pytest benchmarks -q "$@"
        ;;
    *)
        sed -n '2,6p' "$0"
        exit 2
        ;;
esac

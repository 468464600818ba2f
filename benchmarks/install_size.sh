#!/usr/bin/env bash
# Install sizes (issue 29): the wheel, and fresh virtual environments holding
#   core   torch==2.13.0 (CPU) + the wheel with its core dependencies,
#   all    the same + the [all] extra,
#   before (with a git revision as argument) that revision installed the same way, e.g. the last
#          commit before the lean install: benchmarks/install_size.sh 0a098c2
# Sizes are `du -sm` of each whole environment (Python's own files included). Needs the network
# (or a pip cache) for the dependencies; several minutes.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python=${PYTHON:-python3.11}

wheel_of() {  # wheel_of <source dir> <out dir>: build a wheel (no isolation: offline)
    "$python" -m build --no-isolation --skip-dependency-check --wheel --outdir "$2" "$1" >/dev/null
    ls "$2"/*.whl
}

env_size() {  # env_size <name> <requirement>: a fresh venv, torch first, then the requirement
    "$python" -m venv "$work/$1"
    "$work/$1/bin/pip" install -q "torch==2.13.0" 2>/dev/null
    "$work/$1/bin/pip" install -q "$2" 2>/dev/null
    site="$(echo "$work/$1"/lib/python3*/site-packages)"
    printf '%-7s %6s MB  (%s packages; torch itself %s MB)\n' "$1" "$(du -sm "$work/$1" | cut -f1)" \
        "$("$work/$1/bin/pip" list 2>/dev/null | tail -n +3 | wc -l)" "$(du -sm "$site/torch" | cut -f1)"
}

cp -r "$repo" "$work/src" && rm -rf "$work/src/.venv" "$work/src/build" "$work/src/dist" "$work/src/site"
wheel="$(wheel_of "$work/src" "$work/dist")"
printf 'wheel   %6s MB  %s\n' "$(du -sm "$wheel" | cut -f1)" "$(basename "$wheel")"
env_size core "$wheel"
env_size all "$wheel[all]"
if [ $# -ge 1 ]; then
    mkdir "$work/before" && git -C "$repo" archive "$1" | tar -x -C "$work/before"
    env_size before "$(wheel_of "$work/before" "$work/dist_before")"
fi

#!/usr/bin/env bash
# Create .venv and install tweetcls with its dev tools, every package at the version of the
# lock, requirements/constraints.txt (pyproject.toml holds the compatible ranges; the lock is the
# exact environment the tests ran in; docs/development.md says how to regenerate it).
# torch goes first, alone, from TORCH_INDEX_URL when set (CI sets PyTorch's CPU index,
# https://download.pytorch.org/whl/cpu, so that pip does not fetch a multi-GB CUDA build; here
# pip finds the CPU build on disk); the second install then resolves its dependencies.
set -euo pipefail
cd "$(dirname "$0")"
lock=requirements/constraints.txt
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet --no-deps --constraint "$lock" \
    ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} torch
.venv/bin/python -m pip install --quiet --constraint "$lock" -e ".[train,serve,dev]"

# System packages for four tests: Debian's Chromium, which Playwright drives for the web-page
# test (a browser download is not possible offline), a PostgreSQL server, which the
# request-log test starts as a throwaway cluster, a Redis server, the rate limit's shared
# store in the two-replica test, and wrk, the closed-loop load generator of
# scripts/bench_serve.py and its tests. Installed when missing and this runs as root on a
# Debian-like system; elsewhere those tests skip and say why.
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v initdb >/dev/null || [ -d /usr/lib/postgresql ] || missing+=(postgresql)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v wrk >/dev/null || missing+=(wrk)
if [ ${#missing[@]} -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 \
        || { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >/dev/null
fi

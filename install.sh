#!/usr/bin/env bash
# Create .venv and install tweetcls with its dev tools. CPU torch goes first, so that pip does
# not fetch a multi-GB CUDA build; on a GPU machine install the CUDA torch first instead.
set -euo pipefail
cd "$(dirname "$0")"
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
# the torch pin is pyproject.toml's (the `train` extra), not a second copy here
torch_pin=$(grep -o '"torch==[^"]*"' pyproject.toml | tr -d '"')
.venv/bin/python -m pip install --quiet "$torch_pin"
.venv/bin/python -m pip install --quiet -e ".[train,serve,dev]"

# System packages for two tests: Debian's Chromium, which Playwright drives for the web-page
# test (a browser download is not possible offline), and a PostgreSQL server, which the
# request-log test starts as a throwaway cluster. Installed when missing and this runs as
# root on a Debian-like system; elsewhere those tests skip and say why.
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v initdb >/dev/null || [ -d /usr/lib/postgresql ] || missing+=(postgresql)
if [ ${#missing[@]} -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 \
        || { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >/dev/null
fi

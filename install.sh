#!/usr/bin/env bash
# Create .venv and install tweetcls with its dev tools. CPU torch goes first, so that pip does
# not fetch a multi-GB CUDA build; on a GPU machine install the CUDA torch first instead.
set -euo pipefail
cd "$(dirname "$0")"
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet "torch==2.13.0"
.venv/bin/python -m pip install --quiet -e ".[train,serve,dev]"

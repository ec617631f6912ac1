#!/usr/bin/env bash
# Set up, then run the main job: build the default base (first time only) and the two-hop quick start.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/loralab quickstart "$@"

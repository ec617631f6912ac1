#!/usr/bin/env bash
# Set up, then run the main job: the bridge ablation (Table 1 / Table 9) at the default scale on the built-in
# base (built the first time), on a local two-worker Ray instance, and its report. Rerun to resume.
# Extra arguments go to `loralab run` (e.g. --executor local, --workdir DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
WORKDIR=loralab-work
for ((i = 1; i <= $#; i++)); do
    if [[ "${!i}" == "--workdir" ]]; then j=$((i + 1)); WORKDIR="${!j}"; fi
    if [[ "${!i}" == --workdir=* ]]; then WORKDIR="${!i#--workdir=}"; fi
done
.venv/bin/loralab run experiments/paper/bridge-ablation.yaml --scale default --executor ray "$@"
exec .venv/bin/loralab report "$WORKDIR/runs/bridge-ablation.default"

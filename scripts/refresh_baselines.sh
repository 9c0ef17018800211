#!/usr/bin/env bash
# Refresh the saved scorecards the regression gate compares with, after a deliberate change of
# verdicts or actions: the whole corpus (`simulations/baselines/corpus.json`, what `.ci/run`
# gates on) and the CI subset (`simulations/baselines/ci-subset.json`, what the suite replays).
# Review the diff of both files before committing them with the change that moved them.
set -euo pipefail
cd "$(dirname "$0")/.."
data="$(mktemp -d)"
trap 'rm -rf "$data"' EXIT
export GARRISON_DATA_DIR="$data"
.venv/bin/garrison simulate simulations/incidents --report-json simulations/baselines/corpus.json
mapfile -t subset < <(grep -v '^#' simulations/ci-subset.txt | sed '/^\s*$/d; s|^|simulations/incidents/|')
.venv/bin/garrison simulate "${subset[@]}" --report-json simulations/baselines/ci-subset.json

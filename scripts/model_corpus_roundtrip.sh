#!/usr/bin/env bash
# Issue 14's whole-corpus check: the real langchain-openai client against the canned
# OpenAI-compatible server (tests/models/openai_server.py) over loopback runs every committed
# incident with recording on; then the server is stopped and the recording is replayed offline.
# The two scorecards must agree incident by incident (verdicts and executed actions), and the
# replay must make no network call (the server is gone: a call it lacked would fail the run).
# Prints both runs' headline figures and the comparison; exit 1 on any difference.
set -euo pipefail
cd "$(dirname "$0")/.."
work="$(mktemp -d)"
trap '[ "${server:-0}" != 0 ] && kill "$server" 2>/dev/null; rm -rf "$work"' EXIT
port="${PORT:-18765}"
.venv/bin/python tests/models/openai_server.py "$port" &
server=$!
for _ in $(seq 50); do
  curl -s -o /dev/null "http://127.0.0.1:$port/docs" && break
  sleep 0.2
done
export OPENAI_API_KEY=sk-test GARRISON_MODEL_BASE_URL="http://127.0.0.1:$port/v1"
GARRISON_DATA_DIR="$work/recorded" /usr/bin/time -f "recorded run: %e s wall" \
  .venv/bin/garrison simulate simulations/incidents --model openai:canned \
  --record-model "$work/tape" --report-json "$work/recorded.json" --no-keep >/dev/null
kill "$server"; wait "$server" 2>/dev/null || true; server=0
unset GARRISON_MODEL_BASE_URL
GARRISON_DATA_DIR="$work/replayed" /usr/bin/time -f "replayed run: %e s wall" \
  .venv/bin/garrison simulate simulations/incidents --model "replay:$work/tape" \
  --report-json "$work/replayed.json" --no-keep >/dev/null
.venv/bin/python - "$work/recorded.json" "$work/replayed.json" <<'PY'
import json, sys
recorded, replayed = (json.load(open(p)) for p in sys.argv[1:3])
def rows(card):
    return {
        r["id"]: (r["verdict"], sorted((a["kind"], a["target"]) for a in r["executed_actions"]))
        for r in card["per_incident"]
    }
a, b = rows(recorded), rows(replayed)
calls = sum((r.get("model") or {}).get("calls", 0) for r in recorded["per_incident"])
for name, card in (("recorded", recorded), ("replayed", replayed)):
    print(f"{name}: {card['incidents']} incidents, verdict {card['verdict_accuracy']:.3f},"
          f" recall {card['containment_recall']:.3f}, precision {card['containment_precision']:.3f},"
          f" over {card['over_response']}, unapproved {card['unapproved_risky_actions']}")
print(f"model calls recorded: {calls}")
differ = sorted(i for i in a.keys() | b.keys() if a.get(i) != b.get(i))
print(f"incidents that differ between the recorded run and its replay: {len(differ)}")
for i in differ:
    print(f"  {i}: recorded {a.get(i)} / replayed {b.get(i)}")
sys.exit(1 if differ else 0)
PY

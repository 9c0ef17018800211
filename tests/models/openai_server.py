"""An OpenAI-compatible chat-completions server for the tests: canned tool calls over loopback
HTTP, so the real `langchain-openai` client runs end to end with no provider.

Each request offers the agents' one tool (the answer's schema); the server answers a call of
that tool with the canned arguments for its name (`CANNED`), reports token usage (a quarter of
the characters in and out), and counts the requests. A request that offers the investigation's
tools (`Conclusion` among them) is a turn of its loop (`investigation_turn`): a process tree of
the first host in scope, then those processes' connections, then a conclusion. A tool named in
`failing` gets a 503, one in `hanging` no answer for a minute (the client's timeout ends the call
first). The last request's body is kept (`/v1/last`). Run alone for a by-hand corpus run:

    python tests/models/openai_server.py 8765
    GARRISON_MODEL_BASE_URL=http://127.0.0.1:8765/v1 OPENAI_API_KEY=sk-test \\
      garrison simulate simulations/incidents --model openai:canned --record-model /tmp/tape
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

# Plausible, fixed answers: a triage verdict that is not always the rules' (so disagreement and
# the cautious confidence show), and a remediation selection that adds nothing.
CANNED: dict[str, dict[str, Any]] = {
    "ModelVerdict": {"verdict": "malicious", "confidence": 0.6, "category": "execution"},
    "ModelSelection": {"actions": []},
    "IncidentNarrative": {
        "narrative": "The alerts and telemetry show the verdict's activity on the host named in "
        "the findings; the rules' proposals contain it.",
        "justifications": [
            {"action": "A1", "justification": "Proportionate: it stops the activity found."}
        ],
    },
}


def investigation_turn(messages: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """The canned investigator: the process tree of the first alerting process with a command
    line (its ancestors and descendants), then the connections of those processes, then a
    conclusion on the addresses they connected to."""
    turns = sum(1 for m in messages if m.get("role") == "assistant")
    answers = "\n".join(str(m.get("content") or "") for m in messages if m.get("role") == "tool")
    first = str(messages[1].get("content") or "") if len(messages) > 1 else ""
    scope = re.search(r'"hosts_in_scope": \[\s*"([^"]+)"', first)
    if scope is None:
        return []
    host = scope.group(1)
    if turns == 0:
        pid = re.search(r'"pid": (\d+), "cmd_line": "[^"]', first)
        return [
            ("ProcessTree", {"host": host, "pid": int(pid.group(1))} if pid else {"host": host})
        ]
    if turns == 1:
        pids = list(dict.fromkeys(int(p) for p in re.findall(r'"pid": (\d+)', answers)))[:5]
        return [("NetworkConnections", {"host": host, "pid": pid}) for pid in pids]
    seen = re.findall(r'"dst": "(\d+\.\d+\.\d+\.\d+):', answers)
    addresses = sorted(set(seen))[:3]
    findings = [{"summary": "the process tree connected out", "entities": addresses}]
    conclusion = {
        "verdict": "malicious",
        "findings": findings if addresses else [],
        "attacker_ips": addresses,
    }
    return [("Conclusion", conclusion)]


def build_app(
    canned: dict[str, dict[str, Any]] | None = None,
    *,
    failing: frozenset[str] = frozenset(),
    hanging: frozenset[str] = frozenset(),
) -> FastAPI:
    answers = CANNED if canned is None else canned
    app = FastAPI()
    app.state.requests = 0

    @app.post("/v1/chat/completions", response_model=None)
    async def completions(request: Request) -> dict[str, Any] | JSONResponse:
        body = await request.json()
        app.state.requests += 1
        app.state.last = body
        tools = body.get("tools") or []
        names = [t["function"]["name"] for t in tools]
        if names and names[0] in failing:
            return JSONResponse({"error": {"message": "overloaded"}}, status_code=503)
        if names and names[0] in hanging:
            await asyncio.sleep(60)
        if "Conclusion" in names:
            chosen = investigation_turn(body.get("messages", []))
        else:
            chosen = [(names[0], answers.get(names[0], {}))] if names else []
        calls = [
            {
                "id": f"call_{app.state.requests}_{n}",
                "type": "function",
                "function": {"name": name, "arguments": json.dumps(args)},
            }
            for n, (name, args) in enumerate(chosen)
        ]
        arguments = sum(len(c["function"]["arguments"]) for c in calls)
        prompt = sum(len(str(m.get("content") or "")) for m in body.get("messages", []))
        usage = {"prompt_tokens": prompt // 4, "completion_tokens": arguments // 4}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        message = {"role": "assistant", "content": None, "tool_calls": calls}
        return {
            "id": f"chatcmpl-{app.state.requests}",
            "object": "chat.completion",
            "created": 0,
            "model": body.get("model", "canned"),
            "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}],
            "usage": usage,
        }

    @app.get("/v1/last")
    async def last() -> dict[str, Any]:
        return getattr(app.state, "last", {})

    @app.get("/v1/requests")
    async def requests() -> dict[str, int]:
        return {"requests": app.state.requests}

    return app


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(build_app(), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")

"""An OpenAI-compatible chat-completions server for the tests: canned tool calls over loopback
HTTP, so the real `langchain-openai` client runs end to end with no provider.

Each request offers the agents' one tool (the answer's schema); the server answers a call of
that tool with the canned arguments for its name (`CANNED`), reports token usage (a quarter of
the characters in and out), and counts the requests. A tool named in `failing` gets a 503, one
in `hanging` no answer for a minute (the client's timeout ends the call first). Run alone for
a by-hand corpus run:

    python tests/models/openai_server.py 8765
    GARRISON_MODEL_BASE_URL=http://127.0.0.1:8765/v1 OPENAI_API_KEY=sk-test \\
      garrison simulate simulations/incidents --model openai:canned --record-model /tmp/tape
"""

from __future__ import annotations

import asyncio
import json
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
        tools = body.get("tools") or []
        name = tools[0]["function"]["name"] if tools else ""
        if name in failing:
            return JSONResponse({"error": {"message": "overloaded"}}, status_code=503)
        if name in hanging:
            await asyncio.sleep(60)
        arguments = json.dumps(answers.get(name, {}))
        prompt = sum(len(str(m.get("content") or "")) for m in body.get("messages", []))
        usage = {"prompt_tokens": prompt // 4, "completion_tokens": len(arguments) // 4}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        call = {"id": "call_1", "type": "function"}
        call["function"] = {"name": name, "arguments": arguments}  # type: ignore[assignment]
        message = {"role": "assistant", "content": None, "tool_calls": [call] if name else []}
        return {
            "id": f"chatcmpl-{app.state.requests}",
            "object": "chat.completion",
            "created": 0,
            "model": body.get("model", "canned"),
            "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}],
            "usage": usage,
        }

    @app.get("/v1/requests")
    async def requests() -> dict[str, int]:
        return {"requests": app.state.requests}

    return app


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(build_app(), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")

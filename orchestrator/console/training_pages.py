"""The console's training pages: the training sessions kept in the store (`garrison train`), the
team's progress over time, and one session's scores with each incident's debrief.

Read-only pages (GET, no form posts): each depends on a signed-in session (`auth.Signed`). A
debrief quotes alert titles and the incident's truth: rendered escaped, like every page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from starlette.responses import Response

from orchestrator.console.auth import Signed
from orchestrator.console.rendering import page

router = APIRouter(prefix="/console")
SessionId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$", max_length=64)]
Analyst = Annotated[str, Query(max_length=140)]


@router.get("/training", include_in_schema=False)
async def training(request: Request, session: Signed, analyst: Analyst = "") -> Response:
    kept = await request.app.state.deps.store.training_sessions.list(analyst or None)
    return page(request, "training.html", session, sessions=kept, analyst=analyst)


@router.get("/training/{session_id}", include_in_schema=False)
async def training_session(request: Request, session_id: SessionId, session: Signed) -> Response:
    kept = await request.app.state.deps.store.training_sessions.get(session_id)
    if kept is None:
        what = f"No training session {session_id}."
        return page(request, "not_found.html", session, status_code=404, what=what)
    return page(request, "training_session.html", session, kept=kept, report=kept.report)

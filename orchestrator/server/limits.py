"""Reading a request body with a hard cap, whatever the client claims in `Content-Length`."""

from __future__ import annotations

from fastapi import HTTPException, Request

MAX_BODY_BYTES = 256 * 1024  # Slack's interaction payloads are a few KB; the API's bodies less


async def read_capped(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The raw body, or 413 as soon as it is known to exceed `limit` (declared or streamed)."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or len(declared) > 12):
        raise HTTPException(400, "Content-Length is not a number")
    if declared is not None and int(declared) > limit:
        raise HTTPException(413, f"body larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)

"""How approval requests reach humans. Slack implements this in its own module; the default
writes to the log so that a console or CLI user finds requests with `garrison approvals list`."""

from __future__ import annotations

import logging
from typing import Protocol

from orchestrator.models import ApprovalFinalInput, ApprovalNoticeInput, ApprovalRequestInput

log = logging.getLogger("garrison.approvals")


class ApprovalNotifier(Protocol):
    async def requested(self, request: ApprovalRequestInput) -> None: ...

    async def notice(self, notice: ApprovalNoticeInput) -> None: ...

    async def finalized(self, final: ApprovalFinalInput) -> None: ...


class LogNotifier:
    async def requested(self, request: ApprovalRequestInput) -> None:
        log.info(
            "approval %s requested: %s %s (risk %d) in %s, deadline %s",
            request.approval_id,
            request.action.kind.value,
            request.action.target,
            request.decision.risk,
            request.incident_id,
            request.deadline.isoformat(),
        )

    async def notice(self, notice: ApprovalNoticeInput) -> None:
        log.info("approval %s: %s", notice.approval_id, notice.notice.value)

    async def finalized(self, final: ApprovalFinalInput) -> None:
        log.info("approval %s: %s", final.approval_id, final.status)

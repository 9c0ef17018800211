"""Inputs and results of the workflows, their signals, updates and queries, and the activities.

One pydantic model per boundary (the SDK's pydantic data converter carries them, by structure:
names, fields and defaults are what recorded histories hold). Payloads hold ids and small
summaries; alerts and telemetry stay in SQL. By role: `timeouts` (of activities),
`workflow` (the incident workflow's input and carry), `views` (status and results), `approvals`
(decisions and notices to humans), `tickets` (the ticket outbox), `activities` (the rest of the
activities' inputs and results). Every name is importable from here.
"""

from __future__ import annotations

from orchestrator.models.activities import (
    AlertsJoinedInput,
    AlertsJoinedResult,
    CloseIncidentInput,
    EndActionInput,
    ExecuteActionInput,
    ExecuteActionResult,
    ExecutionStatus,
    GatedProposal,
    IncidentRef,
    IsolationSlot,
    IsolationSlotInput,
    JoinedAlert,
    PlaybookStepInput,
    PlaybookStepResult,
    PolicyRecord,
    RollbackInput,
    RollbackResult,
)
from orchestrator.models.approvals import (
    ApprovalFinalInput,
    ApprovalNotice,
    ApprovalNoticeInput,
    ApprovalRequestInput,
    ConfirmDecisionInput,
    DecisionAck,
    DecisionConfirmation,
    DecisionInput,
    DecisionKind,
    HumanNotice,
    ModelNote,
    RefusalCode,
)
from orchestrator.models.tickets import (
    OpenTicketInput,
    TicketingEvent,
    TicketingStatusInput,
    TicketNote,
    TicketOutboxCarry,
    TicketRef,
    TicketWork,
    TicketWorkKind,
)
from orchestrator.models.timeouts import ActivityKind, ActivityProfile, KindTimeouts
from orchestrator.models.views import (
    ApprovalStage,
    DeniedActionView,
    ExecutedActionView,
    IncidentPhase,
    IncidentResult,
    IncidentStatusView,
    PendingApprovalView,
    TicketingOutage,
    TicketingView,
)
from orchestrator.models.workflow import AlertsAdded, IncidentCarry, IncidentWorkflowInput

__all__ = [
    "ActivityKind",
    "ActivityProfile",
    "AlertsAdded",
    "AlertsJoinedInput",
    "AlertsJoinedResult",
    "ApprovalFinalInput",
    "ApprovalNotice",
    "ApprovalNoticeInput",
    "ApprovalRequestInput",
    "ApprovalStage",
    "CloseIncidentInput",
    "ConfirmDecisionInput",
    "DecisionAck",
    "DecisionConfirmation",
    "DecisionInput",
    "DecisionKind",
    "DeniedActionView",
    "EndActionInput",
    "ExecuteActionInput",
    "ExecuteActionResult",
    "ExecutedActionView",
    "ExecutionStatus",
    "GatedProposal",
    "HumanNotice",
    "IncidentCarry",
    "IncidentPhase",
    "IncidentRef",
    "IncidentResult",
    "IncidentStatusView",
    "IncidentWorkflowInput",
    "IsolationSlot",
    "IsolationSlotInput",
    "JoinedAlert",
    "KindTimeouts",
    "ModelNote",
    "OpenTicketInput",
    "PendingApprovalView",
    "PlaybookStepInput",
    "PlaybookStepResult",
    "PolicyRecord",
    "RefusalCode",
    "RollbackInput",
    "RollbackResult",
    "TicketNote",
    "TicketOutboxCarry",
    "TicketRef",
    "TicketWork",
    "TicketWorkKind",
    "TicketingEvent",
    "TicketingOutage",
    "TicketingStatusInput",
    "TicketingView",
]

"""The workflow input of a live incident, from the settings and the policy: what the dispatcher
starts each incident's workflow with, its activities' timeouts and retries included."""

from __future__ import annotations

from orchestrator.ingest.dispatch import WorkflowInputFor
from orchestrator.models import ActivityKind, ActivityProfile, IncidentWorkflowInput, KindTimeouts
from orchestrator.policy.model import PolicyDocument
from orchestrator.settings import ActivitiesSettings, GarrisonSettings, KindSettings
from orchestrator.store.records import IncidentRecord
from orchestrator.temporal.client import Role, task_queue


def live_workflow_input(settings: GarrisonSettings, policy: PolicyDocument) -> WorkflowInputFor:
    activity = activity_profile(settings.activities)
    agents = task_queue(settings.temporal, Role.AGENTS)
    actions = task_queue(settings.temporal, Role.ACTIONS)

    def build(incident: IncidentRecord) -> IncidentWorkflowInput:
        return IncidentWorkflowInput(
            incident_id=incident.id,
            group_key=incident.group_key,
            title=incident.title,
            policy=policy,
            requester=settings.agent_identity,
            activity=activity,
            task_queue_agents=agents,
            task_queue_actions=actions,
        )

    return build


def activity_profile(settings: ActivitiesSettings) -> ActivityProfile:
    """Every kind's timeouts and retries (`GARRISON_ACTIVITIES__*`), as the workflow carries them.
    The flat fields keep their defaults: they serve only activities of no known kind."""
    return ActivityProfile(
        kinds={kind: _timeouts(getattr(settings, kind.value)) for kind in ActivityKind}
    )


def _timeouts(kind: KindSettings) -> KindTimeouts:
    return KindTimeouts(
        start_to_close_s=kind.start_to_close_s,
        heartbeat_s=kind.heartbeat_s,
        initial_retry_s=kind.retry_initial_s,
        max_retry_s=kind.retry_max_s,
        max_attempts=kind.max_attempts,
    )

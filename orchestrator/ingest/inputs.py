"""The workflow input of a live incident, from the settings and the policy: what the dispatcher
starts each incident's workflow with."""

from __future__ import annotations

from orchestrator.ingest.dispatch import WorkflowInputFor
from orchestrator.models import ActivityProfile, IncidentWorkflowInput
from orchestrator.policy.model import PolicyDocument
from orchestrator.settings import GarrisonSettings
from orchestrator.store.records import IncidentRecord
from orchestrator.temporal.client import Role, task_queue


def live_workflow_input(settings: GarrisonSettings, policy: PolicyDocument) -> WorkflowInputFor:
    activity = ActivityProfile()
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

"""Who the console may assign an incident to: the people the approver directory names."""

from __future__ import annotations

from orchestrator.approvals.directory import ApproverDirectory


def assignable(directory: ApproverDirectory) -> list[str]:
    """Everyone the directory names (its `people` and its groups' members, canonical), sorted."""
    people = set(directory.people)
    for group in directory.groups.values():
        people.update(group.members)
    return sorted(people)

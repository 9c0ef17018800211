"""Which built-in playbook handles an incident category.

Agents sit below playbooks and do not import them; this table names the playbooks by id and a
test keeps it equal to `playbooks.registry.playbook_for`, which stays the authority at run time.
"""

from __future__ import annotations

from tools.models import Category

FALLBACK_PLAYBOOK = "hands_on_keyboard"
PLAYBOOK_BY_CATEGORY: dict[Category, str] = {
    Category.CREDENTIAL_ACCESS: "credential_access",
    Category.DISCOVERY: "triage_only",
    Category.BENIGN_ACTIVITY: "triage_only",
}


def playbook_id_for(category: Category) -> str:
    return PLAYBOOK_BY_CATEGORY.get(category, FALLBACK_PLAYBOOK)

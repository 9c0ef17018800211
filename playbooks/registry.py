"""The explicit registry of built-in playbooks: a tuple, no scanning, no import side effects."""

from __future__ import annotations

from playbooks.base import Playbook
from playbooks.credential_access.graph import PLAYBOOK as CREDENTIAL_ACCESS
from playbooks.hands_on_keyboard.graph import PLAYBOOK as HANDS_ON_KEYBOARD
from playbooks.triage_only.graph import PLAYBOOK as TRIAGE_ONLY
from tools.models import Category

PLAYBOOKS: tuple[Playbook, ...] = (CREDENTIAL_ACCESS, HANDS_ON_KEYBOARD, TRIAGE_ONLY)
FALLBACK: Playbook = HANDS_ON_KEYBOARD


class UnknownPlaybook(KeyError):
    pass


def get_playbook(playbook_id: str) -> Playbook:
    for playbook in PLAYBOOKS:
        if playbook.id == playbook_id:
            return playbook
    raise UnknownPlaybook(playbook_id)


def playbook_for(category: Category) -> Playbook:
    """The first registered playbook that declares the category, else the fallback."""
    return next((p for p in PLAYBOOKS if category in p.categories), FALLBACK)


def registered_playbooks() -> tuple[Playbook, ...]:
    return PLAYBOOKS

"""The scorecard's by-category table names the playbooks the routing chose for each category's
incidents, from the runs' results (`IncidentResult.playbook`)."""

from __future__ import annotations

from simulations.breakdown import playbooks_by_category
from simulations.scorer import IncidentRun, score
from simulations.spec import Truth
from tools.models import Category, Verdict


def _truth(category: Category) -> Truth:
    verdict = Verdict.BENIGN if category is Category.BENIGN_ACTIVITY else Verdict.MALICIOUS
    return Truth(verdict=verdict, category=category)


def test_each_category_lists_its_playbooks_most_used_first() -> None:
    runs = [
        IncidentRun(id="a", verdict=Verdict.MALICIOUS, playbook="defense_evasion"),
        IncidentRun(id="b", verdict=Verdict.MALICIOUS, playbook="execution"),
        IncidentRun(id="c", verdict=Verdict.MALICIOUS, playbook="execution"),
        IncidentRun(id="d", verdict=Verdict.BENIGN, playbook="triage_only"),
        IncidentRun(id="e", verdict=None),  # a failed run: no playbook known
    ]
    truths = {
        "a": _truth(Category.DEFENSE_EVASION),
        "b": _truth(Category.DEFENSE_EVASION),
        "c": _truth(Category.DEFENSE_EVASION),
        "d": _truth(Category.BENIGN_ACTIVITY),
        "e": _truth(Category.IMPACT),
    }
    card = score(runs, truths, threshold=50, elapsed_s=1.0)
    assert [r.playbook for r in card.per_incident] == [
        "defense_evasion", "execution", "execution", "triage_only", None
    ]  # fmt: skip
    assert playbooks_by_category(card) == {
        "defense_evasion": "execution 2, defense_evasion 1",
        "benign_activity": "triage_only 1",
        "impact": "- 1",
    }

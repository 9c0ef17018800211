"""ATT&CK coverage comes from the SigmaHQ rules, not the corpus: every technique and sub-technique
a rule in ../shared/datasets/sigma-rules is tagged with has an entry in the knowledge (a tactic
that maps to a category, a weight, a response). The shared datasets are always beside the clone,
so a missing rules file fails here rather than skipping.

The generator (`simulations.knowledge_coverage`) is checked on a handful of rules written here:
it adds what is missing, keeps hand-tuned entries, and gives a sub-technique its parent's entry.
"""

from __future__ import annotations

from pathlib import Path

import yaml

import agents.knowledge as knowledge
from agents.knowledge_base import PACKAGED_DIR
from agents.knowledge_base.schema import Techniques
from simulations.knowledge_coverage import SIGMA_RULES, main, new_entries, sigma_techniques


def test_every_sigma_technique_tag_has_an_entry() -> None:
    found = sigma_techniques(SIGMA_RULES)
    assert len(found) > 300  # the whole rule set was read, not an empty folder

    missing = sorted(t for t in found if t not in knowledge.TECHNIQUE_CATEGORY)

    assert missing == [], (
        f"{len(missing)} ATT&CK tags of the Sigma rules have no entry in "
        f"agents/knowledge_base/techniques.yaml: {', '.join(missing)}; "
        "run `python -m simulations.knowledge_coverage` and review what it wrote"
    )


def test_every_entry_has_a_category_a_weight_and_a_response_of_its_category() -> None:
    for technique in knowledge.TECHNIQUE_CATEGORY:
        category = knowledge.technique_category(technique)
        assert category is not None, technique
        assert 0.0 <= knowledge.technique_weight(technique) <= 10.0
        response = set(knowledge.technique_response(technique))
        assert response <= set(knowledge.CATEGORY_RESPONSE[category]), technique
    assert knowledge.technique_response("T1087.002") == ()  # discovery alone: a ticket


def _rule(folder: Path, name: str, tags: list[str]) -> None:
    body = {"title": name, "id": name, "logsource": {"product": "windows"}, "tags": tags}
    (folder / f"{name}.yml").write_text(yaml.safe_dump(body), encoding="utf-8")


def _techniques_file(folder: Path) -> Path:
    """The packaged techniques file cut to two hand-made entries."""
    document = yaml.safe_load((PACKAGED_DIR / "techniques.yaml").read_text(encoding="utf-8"))
    kept = {t: document["techniques"][t] for t in ("T1003", "T1087")}
    kept["T1003"] = {**kept["T1003"], "weight": 4.5}  # a hand-tuned weight
    lines = yaml.safe_dump({k: v for k, v in document.items() if k != "techniques"}).splitlines()
    lines.append("techniques:")
    lines += [
        f"  {t}: {yaml.safe_dump(e, default_flow_style=True, width=1_000).strip()}"
        for t, e in kept.items()
    ]
    path = folder / "techniques.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_the_generator_adds_missing_tags_and_keeps_hand_tuned_entries(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    # a technique seen with two tactics, persistence more often
    _rule(rules, "a", ["attack.persistence", "attack.t1999"])
    _rule(rules, "b", ["attack.persistence", "attack.privilege-escalation", "attack.t1999"])
    # a sub-technique of a hand-made entry, tagged with another tactic: the entry's choice holds
    _rule(rules, "c", ["attack.defense-evasion", "attack.t1003.042"])
    # a discovery sub-technique and a tactic the knowledge maps to discovery
    _rule(rules, "d", ["attack.reconnaissance", "attack.t1595.002"])
    path = _techniques_file(tmp_path)

    assert main(["--rules", str(rules), "--techniques", str(path), "--check"]) == 1
    assert main(["--rules", str(rules), "--techniques", str(path)]) == 0
    assert main(["--rules", str(rules), "--techniques", str(path), "--check"]) == 0

    written = Techniques.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    entries = written.techniques
    assert entries["T1003"].weight == 4.5  # untouched
    assert entries["T1999"].tactic == "persistence"
    assert entries["T1999"].weight == written.tactics["persistence"].weight
    assert entries["T1003.042"].tactic == "credential-access"
    assert entries["T1003.042"].weight == 4.5
    assert entries["T1595.002"].tactic == "reconnaissance"
    assert entries["T1595.002"].response == []
    ids = [line.split(":")[0].strip() for line in path.read_text().splitlines()[-5:]]
    assert ids == ["T1003", "T1003.042", "T1087", "T1595.002", "T1999"]  # in id order


def test_a_tag_whose_rules_name_no_known_tactic_is_reported_not_guessed(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    _rule(rules, "a", ["attack.t1998", "attack.s0002"])
    techniques = Techniques.model_validate(
        yaml.safe_load(_techniques_file(tmp_path).read_text(encoding="utf-8"))
    )

    added = new_entries(sigma_techniques(rules), techniques)

    assert isinstance(added["T1998"], str) and "by hand" in added["T1998"]

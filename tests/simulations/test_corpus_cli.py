"""`garrison corpus` as a user runs it: `check` passes on the committed corpus and names every
problem of a broken copy (file, field path, what is wrong) with exit status 2; the importers' bad
input ends the same way, never with a traceback."""

from __future__ import annotations

import json
import shutil
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from typer.testing import CliRunner, Result

from simulations.cli_corpus import corpus_app

ROOT = Path(__file__).parents[2]
INCIDENTS = ROOT / "simulations" / "incidents"
STARTER = ROOT / "simulations" / "labels" / "starter.yaml"
BACKGROUND = ROOT / "simulations" / "labels" / "otrf-background.yaml"
BENIGN = "otrf-machine-logoffs-mordordc-0921a"  # the first entry of BACKGROUND
ALL_LABELS = sorted((ROOT / "simulations" / "labels").glob("*.yaml"))
FIXTURE = Path(__file__).parent / "fixtures" / "ocsf"
OTRF = Path("/work/shared/datasets/otrf")
SIGMA_TARBALL = OTRF.parent / "sigma-rules" / "sigma-rules.tar.gz"


def one_rule(folder: Path, rule_id: str) -> Path:
    """A rules folder holding the one SigmaHQ rule of that id, taken from the tarball, and the
    Detection Rule License that must travel with it."""
    folder.mkdir(parents=True)
    for licence in SIGMA_TARBALL.parent.glob("LICENSE*"):
        shutil.copy(licence, folder / licence.name)
    with tarfile.open(SIGMA_TARBALL) as tarball:
        for member in tarball.getmembers():
            if not member.isfile() or not member.name.endswith(".yml"):
                continue
            handle = tarball.extractfile(member)
            text = handle.read().decode("utf-8") if handle else ""
            if f"id: {rule_id}" in text:
                (folder / Path(member.name).name).write_text(text, encoding="utf-8")
                return folder
    raise AssertionError(f"rule {rule_id} not in {SIGMA_TARBALL}")


def garrison(*args: str | Path) -> Result:
    app = typer.Typer(pretty_exceptions_enable=False)
    app.add_typer(corpus_app, name="corpus")
    result = CliRunner().invoke(app, ["corpus", *map(str, args)])
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    return result


def corpus_copy(tmp_path: Path) -> tuple[Path, Path]:
    """The starter incidents (all malicious) plus the first background one, and their labels."""
    corpus = tmp_path / "incidents"
    corpus.mkdir(parents=True)
    labels = yaml.safe_load(STARTER.read_text())
    labels["incidents"].append(yaml.safe_load(BACKGROUND.read_text())["incidents"][0])
    for label in labels["incidents"]:
        shutil.copytree(INCIDENTS / label["id"], corpus / label["id"])
    path = tmp_path / "labels.yaml"
    path.write_text(yaml.safe_dump(labels))
    return corpus, path


def edit_json(path: Path, change: Callable[[dict[str, Any]], object]) -> None:
    body = json.loads(path.read_text())
    change(body)
    path.write_text(json.dumps(body))


def label_index(labels: dict[str, list[dict[str, object]]], incident_id: str) -> int:
    return next(i for i, label in enumerate(labels["incidents"]) if label["id"] == incident_id)


def test_check_committed_corpus_with_its_labels_passes() -> None:
    result = garrison("check", INCIDENTS, *(a for f in ALL_LABELS for a in ("--labels", f)))
    assert result.exit_code == 0, result.stderr
    count = sum(1 for p in INCIDENTS.iterdir() if p.is_dir())
    assert count >= 70
    assert result.stdout.strip() == (
        f"checked {count} incidents and {count} labels in {len(ALL_LABELS)} file(s): 0 problem(s)"
    )
    assert result.stderr == ""


def test_check_broken_copy_names_each_problem(tmp_path: Path) -> None:
    corpus, labels_path = corpus_copy(tmp_path)
    edit_json(
        corpus / "otrf-empire-runkey-ws5" / "incident.json",
        lambda d: d["alerts"][0].update({"severity": "severe"}),
    )
    shutil.rmtree(corpus / "otrf-net-domain-admins-ws6")
    shutil.copytree(corpus / "otrf-mshta-startup-hta-ws5", corpus / "otrf-unlabelled-copy")
    edit_json(
        corpus / "otrf-unlabelled-copy" / "incident.json",
        lambda d: d.update({"id": "otrf-unlabelled-copy"}),
    )
    labels = yaml.safe_load(labels_path.read_text())
    prd01 = label_index(labels, "otrf-lsass-comsvcs-prd01")
    benign = label_index(labels, BENIGN)
    missing = label_index(labels, "otrf-net-domain-admins-ws6")
    labels["incidents"][prd01]["truth"]["acceptable_actions"][2]["target"] = "PRD01-7196"
    labels["incidents"][benign]["truth"]["expected_actions"] = [
        {"kind": "isolate_host", "target": "MORDORDC"}
    ]
    labels["incidents"].append(dict(labels["incidents"][benign]))
    labels_path.write_text(yaml.safe_dump(labels))
    last = len(labels["incidents"]) - 1

    result = garrison("check", corpus, "--labels", labels_path)

    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    expected = [
        f"{corpus}/otrf-empire-runkey-ws5/incident.json: alerts[0].severity: Input should be"
        " 'informational', 'low', 'medium', 'high' or 'critical'",
        f"{labels_path}: incidents[{prd01}].truth.acceptable_actions[2].target:"
        " 'PRD01-7196' is not <asset id>:<pid>",
        f"{labels_path}: incidents[{benign}].truth.expected_actions:"
        " a benign incident has no actions",
        f"{labels_path}: incidents[{last}].id: '{BENIGN}' is also the id of"
        f" {labels_path} incidents[{benign}]",
        f"{labels_path}: incidents[{missing}].id: 'otrf-net-domain-admins-ws6':"
        f" no incident folder in {corpus}",
        f"{corpus}/otrf-unlabelled-copy/incident.json: id: 'otrf-unlabelled-copy' has no label",
        f"{corpus}/otrf-lsass-comsvcs-prd01/incident.json: truth: differs from its label in"
        f" {labels_path} (import the incident again)",
        f"{corpus}/{BENIGN}/incident.json: truth: differs from its label in"
        f" {labels_path} (import the incident again)",
    ]
    for line in expected:
        assert line in lines
    assert result.stdout.strip() == (
        f"checked 10 incidents and 11 labels in 1 file(s): {len(lines)} problem(s)"
    )


def test_check_names_labels_whose_dataset_is_absent(tmp_path: Path) -> None:
    corpus, _labels = corpus_copy(tmp_path / "copy")
    result = garrison("check", corpus, "--labels", STARTER, "--datasets", tmp_path)
    assert result.exit_code == 2
    assert (
        f"{STARTER}: incidents[0].dataset: 'LSASS_campaign_03' is in none of {tmp_path}"
        in result.stderr.splitlines()
    )


def test_check_names_bad_yaml_and_invalid_truth_fields(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("incidents:\n  - id: [unclosed\n")
    invalid = tmp_path / "invalid.yaml"
    labels = yaml.safe_load(STARTER.read_text())
    labels["incidents"][0]["truth"]["verdict"] = "maybe"
    labels["incidents"][1]["truth"]["techniques"] = ["credential dumping"]
    invalid.write_text(yaml.safe_dump(labels))
    result = garrison("check", INCIDENTS, "--labels", broken, "--labels", invalid)
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert any(line.startswith(f"{broken}: bad YAML at line 3") for line in lines), lines
    assert (
        f"{invalid}: incidents[0].truth.verdict: Input should be 'malicious' or 'benign'" in lines
    )


def test_check_flags_technique_and_target_spellings(tmp_path: Path) -> None:
    corpus, labels_path = corpus_copy(tmp_path)
    labels = yaml.safe_load(labels_path.read_text())
    truth = labels["incidents"][0]["truth"]
    truth["techniques"].append("T1003-001")
    truth["expected_actions"] += [
        {"kind": "block_ip", "target": "10.0.5.300"},
        {"kind": "block_domain", "target": "not a domain"},
        {"kind": "block_ip", "target": "10.0.5.13/32"},
    ]
    labels_path.write_text(yaml.safe_dump(labels))
    result = garrison("check", corpus, "--labels", labels_path)
    assert result.exit_code == 2
    at = f"{labels_path}: incidents[0].truth"
    for line in (
        f"{at}.techniques[7]: 'T1003-001' is not an ATT&CK id (T1234.001)",
        f"{at}.expected_actions[3].target: '10.0.5.300' is not an IP address or network",
        f"{at}.expected_actions[4].target: 'not a domain' is not a domain name",
        f"{at}.expected_actions[5].target: block_ip '10.0.5.13/32' is listed twice",
    ):
        assert line in result.stderr.splitlines()


def test_import_ocsf_then_check_with_its_labels(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = garrison(
        "import-ocsf",
        FIXTURE / "findings.jsonl",
        "--events",
        FIXTURE / "events.jsonl",
        "--labels",
        FIXTURE / "labels.yaml",
        "--out",
        out,
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"{out}/ocsf-lsass-comsvcs-prd01 (22 alerts, 26 evidence events)",
        f"{out}/ocsf-background-acct01 (3 alerts, 13 evidence events)",
        f"attribution: {out}/ATTRIBUTION-OCSF.md",
    ]
    checked = garrison("check", out, "--labels", FIXTURE / "labels.yaml")
    assert checked.exit_code == 0, checked.stderr


def test_import_ocsf_lists_unlabelled_groups_and_honours_the_window(tmp_path: Path) -> None:
    labels = tmp_path / "labels.yaml"
    text = (FIXTURE / "labels.yaml").read_text()
    labels.write_text(text[: text.index("  - id: ocsf-background-acct01")])
    args = ["import-ocsf", FIXTURE / "findings.jsonl", "--labels", labels, "--out", tmp_path / "o"]
    result = garrison(*args)
    assert result.exit_code == 0, result.stderr
    assert result.stderr.splitlines() == [
        "unlabelled group: host ACCT01, 2023-08-15 05:33:51-05:34:00Z, 3 findings"
    ]
    # With a 10 s window the PRD01 findings fall apart and the label's time range selects several.
    narrow = garrison(*args, "--window", "0.1")
    assert narrow.exit_code == 2
    first = narrow.stderr.splitlines()[0]
    assert first.startswith(
        f"{labels}: incidents[0].select: ocsf-lsass-comsvcs-prd01: selects host PRD01,"
    )
    assert "group: host ACCT01, 2023-08-15 05:33:51-05:34:00Z, 3 findings" in narrow.stderr


def test_import_ocsf_malformed_findings_exit_2_and_write_nothing(tmp_path: Path) -> None:
    findings = tmp_path / "findings.jsonl"
    good = (FIXTURE / "findings.jsonl").read_text().splitlines()
    findings.write_text("\n".join([good[0], "{oops", json.dumps({"class_uid": 4001}), *good[1:]]))
    out = tmp_path / "out"
    result = garrison("import-ocsf", findings, "--labels", FIXTURE / "labels.yaml", "--out", out)
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"{findings}:2: not JSON: Expecting property name enclosed in double quotes",
        f"{findings}:3: class_uid: 4001; a finding line must be 2004 (Detection Finding),"
        " 2001 (Security Finding)",
    ]
    assert not out.exists()


def test_import_otrf_names_a_dataset_it_cannot_find(tmp_path: Path) -> None:
    result = garrison(
        "import-otrf", tmp_path, "--labels", STARTER, "--out", tmp_path / "out", "--rules", tmp_path
    )
    assert result.exit_code == 2
    assert (
        f"{STARTER}: incidents[0].dataset: 'LSASS_campaign_03' is in none of {tmp_path}"
        in result.stderr.splitlines()
    )
    assert not (tmp_path / "out").exists()


ADMINS_RULE = "d95de845-b83c-4a9a-8a6a-4fc802ebf6c0"  # AD Privileged Users or Groups Recon
ADMINS_LABEL = {
    "dataset": "SDWIN-190518201207",
    "title": "Domain Admins enumeration",
    "select": {"rules": [ADMINS_RULE]},
    "truth": {"verdict": "malicious", "category": "discovery"},
    "note": "test",
}


def import_admins(tmp_path: Path, *ids: str) -> tuple[Result, Path, Path]:
    """`import-otrf` of SDWIN-190518201207 with one rule and one label per id: the result, the
    labels file and the output folder."""
    labels = tmp_path / "labels.yaml"
    labels.write_text(yaml.safe_dump({"incidents": [{"id": i, **ADMINS_LABEL} for i in ids]}))
    out = tmp_path / "out"
    result = garrison(
        "import-otrf", OTRF / "SDWIN-190518201207", "--labels", labels, "--out", out,
        "--rules", one_rule(tmp_path / "rules", ADMINS_RULE), "--sigma-cache", tmp_path / "cache",
    )  # fmt: skip
    return result, labels, out


@pytest.mark.skipif(not (OTRF / "SDWIN-190518201207").is_dir(), reason="OTRF datasets absent")
def test_import_otrf_builds_the_labelled_incident(tmp_path: Path) -> None:
    result, labels, out = import_admins(tmp_path, "test-net-domain-admins")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [str(out / "test-net-domain-admins")]
    checked = garrison("check", out, "--labels", labels, "--datasets", OTRF)
    assert checked.exit_code == 0, checked.stderr


@pytest.mark.skipif(not (OTRF / "SDWIN-190518201207").is_dir(), reason="OTRF datasets absent")
def test_import_otrf_refuses_two_labels_on_one_group(tmp_path: Path) -> None:
    result, _, out = import_admins(tmp_path, "first", "second")
    assert result.exit_code == 2
    [problem] = [line for line in result.stderr.splitlines() if line.startswith("label: ")]
    assert problem.startswith(
        "label: second: names the group of 'first' in SDWIN-190518201207 (host WORKSTATION6"
    )
    assert problem.endswith("; one group is one incident")
    assert result.stdout == ""  # a recording whose labels do not fit writes no incident
    assert not (out / "first").exists() and not (out / "second").exists()

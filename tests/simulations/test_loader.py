"""The loader: the committed corpus loads, and each defect is one clear Problem."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

from simulations.loader import load_all, load_incident

CORPUS = Path(__file__).resolve().parents[2] / "simulations" / "incidents"
SAMPLE = "otrf-empire-runkey-ws5"


def _copy(tmp_path: Path, name: str = SAMPLE) -> Path:
    folder = tmp_path / name
    shutil.copytree(CORPUS / SAMPLE, folder)
    if name != SAMPLE:
        _edit(folder, lambda body: body.update(id=name))
    return folder


def _edit(folder: Path, change) -> None:  # type: ignore[no-untyped-def]
    path = folder / "incident.json"
    body = json.loads(path.read_text())
    change(body)
    path.write_text(json.dumps(body))


def _problems(tmp_path: Path) -> list[str]:
    result = load_all([tmp_path])
    assert not result.incidents
    return [str(p) for p in result.problems]


def test_every_committed_incident_loads_without_problems() -> None:
    result = load_all([CORPUS])
    assert result.problems == []
    assert len(result.incidents) >= 12
    for incident in result.incidents:
        assert sum(1 for _ in incident.telemetry()) > 0


def test_corpus_targets_are_asset_ids_of_the_alerts() -> None:
    for incident in load_all([CORPUS]).incidents:
        assets = {a.id for a in incident.spec.environment.assets}
        assert {a.entities.host for a in incident.spec.alerts} <= assets
        for action in incident.spec.truth.expected_actions:
            if action.kind.value in ("isolate_host", "kill_process", "remove_persistence"):
                assert action.target.split(":", 1)[0] in assets


def test_load_incident_returns_the_spec(tmp_path: Path) -> None:
    assert load_incident(_copy(tmp_path)).id == SAMPLE


def test_discover_accepts_an_incident_folder_or_a_folder_of_them(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    assert [i.folder for i in load_all([folder]).incidents] == [folder]
    assert [i.folder for i in load_all([tmp_path]).incidents] == [folder]


def test_missing_incident_json_is_a_problem(tmp_path: Path) -> None:
    (tmp_path / "empty-incident").mkdir()
    [problem] = _problems(tmp_path)
    assert "empty-incident/incident.json" in problem and "missing" in problem


def test_bad_json_names_line_and_column(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    (folder / "incident.json").write_text('{\n  "schema": "recorded-incident/1",\n  oops\n}')
    [problem] = _problems(tmp_path)
    assert "incident.json" in problem and "line 3 col 3" in problem


def test_wrong_schema_is_a_problem(tmp_path: Path) -> None:
    _edit(_copy(tmp_path), lambda body: body.update(schema="recorded-incident/2"))
    [problem] = _problems(tmp_path)
    assert "incident.json: schema:" in problem


def test_mistyped_alert_field_names_its_path(tmp_path: Path) -> None:
    _edit(_copy(tmp_path), lambda body: body["alerts"][1].update(severity="severe"))
    [problem] = _problems(tmp_path)
    assert "incident.json: alerts[1].severity: Input should be 'informational'" in problem


def test_nested_mistyped_field_names_its_path(tmp_path: Path) -> None:
    _edit(_copy(tmp_path), lambda body: body["alerts"][0]["entities"].update(host=5))
    assert any("alerts[0].entities.host" in p for p in _problems(tmp_path))


def test_missing_field_is_a_problem(tmp_path: Path) -> None:
    _edit(_copy(tmp_path), lambda body: body.pop("truth"))
    [problem] = _problems(tmp_path)
    assert "incident.json: truth: Field required" in problem


def test_unknown_action_kind_is_a_problem(tmp_path: Path) -> None:
    def change(body: dict) -> None:  # type: ignore[type-arg]
        body["truth"]["expected_actions"][0]["kind"] = "nuke_host"

    _edit(_copy(tmp_path), change)
    [problem] = _problems(tmp_path)
    assert "truth.expected_actions[0].kind" in problem


def test_folder_name_differing_from_id_is_a_problem(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    folder.rename(tmp_path / "another-name")
    [problem] = _problems(tmp_path)
    assert "another-name/incident.json: id:" in problem and "folder name" in problem


def test_id_not_matching_the_pattern_is_a_problem(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    _edit(folder, lambda body: body.update(id="Bad ID!"))
    problems = _problems(tmp_path)
    assert any(": id: 'Bad ID!' does not match" in p for p in problems)


def test_evidence_beyond_the_telemetry_is_a_problem(tmp_path: Path) -> None:
    _edit(_copy(tmp_path), lambda body: body["alerts"][2].update(evidence=[0, 99999]))
    [problem] = _problems(tmp_path)
    assert "alerts[2].evidence[1]: line 99999 is beyond the telemetry" in problem


def test_corrupt_telemetry_is_a_problem(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    (folder / "telemetry.jsonl.gz").write_bytes(b"\x1f\x8b not really gzip")
    problems = _problems(tmp_path)
    assert any("telemetry.jsonl.gz: unreadable gzip" in p for p in problems)


def test_telemetry_lines_must_be_objects_with_the_normalised_fields(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    lines = ["[1, 2]", "not json", json.dumps({"@timestamp": "2020-01-01T00:00:00Z", "host": "A"})]
    lines += [json.dumps({"@timestamp": "t", "host": None, "event_source": "sysmon"})] * 20
    with gzip.open(folder / "telemetry.jsonl.gz", "wt") as out:
        out.write("\n".join(lines) + "\n")
    problems = _problems(tmp_path)
    assert any("telemetry.jsonl.gz: line 0: not a JSON object" in p for p in problems)
    assert any("telemetry.jsonl.gz: line 1: not JSON" in p for p in problems)
    assert any("telemetry.jsonl.gz: line 2: missing event_source" in p for p in problems)


def test_absent_telemetry_streams_nothing(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    (folder / "telemetry.jsonl.gz").unlink()
    _edit(folder, lambda body: [a.update(evidence=[]) for a in body["alerts"]])
    [incident] = load_all([folder]).incidents
    assert list(incident.telemetry()) == []

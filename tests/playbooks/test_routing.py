"""The routing file: checked on load (errors name the file and the line), first match wins, the
deployment's override, and playbooks that another package declares under the entry point group."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest

from orchestrator.settings import ConfigError, check_playbook_routing
from playbooks import registry
from playbooks.registry import (
    BUILT_IN,
    ENTRY_POINT_GROUP,
    PlaybookLoadError,
    current_routing,
    get_playbook,
    playbook_for,
    registered_playbooks,
)
from playbooks.routing import DEFAULT_ROUTING_FILE, ROUTING_ENV, RoutingError, load_routing
from tools.models import AssetKind, Category, Severity

IDS = [p.id for p in BUILT_IN]


def _file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "routing.yaml"
    path.write_text(dedent(text).lstrip(), encoding="utf-8")
    return path


def test_every_category_has_its_own_playbook_and_benign_gets_a_ticket() -> None:
    for category in Category:
        chosen = playbook_for(category)
        if category is Category.BENIGN_ACTIVITY:
            assert chosen.id == "triage_only"
        else:  # no category falls back to the default or to triage-only
            assert chosen.id == category.value, category
            assert category in chosen.categories


def test_phishing_and_mailbox_compromise_route_by_technique() -> None:
    assert playbook_for(Category.INITIAL_ACCESS, techniques=["T1566.001"]).id == "phishing"
    assert playbook_for(Category.EXECUTION, techniques=["t1566.002"]).id == "phishing"
    assert playbook_for(Category.EXFILTRATION, techniques=["T1114.003"]).id == "phishing"
    # a public-facing exploit is initial access without phishing
    assert playbook_for(Category.INITIAL_ACCESS, techniques=["T1190"]).id == "initial_access"
    # benign first: an ordinary mount that matched a phishing rule gets a ticket
    assert playbook_for(Category.BENIGN_ACTIVITY, techniques=["T1566.001"]).id == "triage_only"


def test_first_match_wins_over_categories_severities_and_asset_kinds(tmp_path: Path) -> None:
    routing = load_routing(
        _file(
            tmp_path,
            """
            default: hands_on_keyboard
            routes:
              - playbook: impact
                categories: [execution]
                severities: [critical]
                asset_kinds: [server, domain_controller]
              - playbook: execution
                categories: [execution]
            """,
        ),
        IDS,
    )
    server = {AssetKind.SERVER}
    route = routing.routes[0]
    assert route.line == 3
    pick = lambda **kw: playbook_for(Category.EXECUTION, routing=routing, **kw).id  # noqa: E731
    assert pick(severity=Severity.CRITICAL, asset_kinds=server) == "impact"
    assert pick(severity=Severity.HIGH, asset_kinds=server) == "execution"
    assert pick(severity=Severity.CRITICAL, asset_kinds={AssetKind.WORKSTATION}) == "execution"
    assert playbook_for(Category.IMPACT, routing=routing).id == "hands_on_keyboard"  # default


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("default: nope\n", 1, "unknown playbook 'nope'"),
        (
            "default: triage_only\nroutes:\n  - playbook: impact\n    categories: [ransom]\n",
            3,
            "unknown category 'ransom'",
        ),
        (
            "default: triage_only\nroutes:\n  - playbook: phish\n    techniques: [T1566]\n",
            3,
            "unknown playbook 'phish'",
        ),
        (
            "default: triage_only\nroutes:\n  - playbook: impact\n    techniques: [T486]\n",
            3,
            "technique 'T486' is not an ATT&CK id",
        ),
        (
            "default: triage_only\nroutes:\n  - playbook: impact\n    techniques: [1486]\n",
            3,
            "'techniques': 1486 is not a name",
        ),
        (
            "default: triage_only\nroutes:\n  - playbook: impact\n    severities: [urgent]\n",
            3,
            "unknown severity 'urgent'",
        ),
        (
            "default: triage_only\nroutes:\n  - playbook: impact\n    asset_kinds: [laptop]\n",
            3,
            "unknown asset kind 'laptop'",
        ),
        (
            "default: triage_only\nroutes:\n\n  - playbook: impact\n    category: [impact]\n",
            4,
            "unknown key 'category'",
        ),
        ("default: triage_only\nroutes:\n  - playbook: impact\n", 3, "has no condition"),
        ("default: triage_only\nroutes: [\n", 3, "not valid YAML"),
        ("routes: []\n", 1, "'default' must name a playbook"),
    ],
)
def test_a_wrong_routing_file_is_an_error_naming_file_and_line(
    tmp_path: Path, text: str, line: int, message: str
) -> None:
    path = tmp_path / "routing.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RoutingError) as raised:
        load_routing(path, IDS)
    assert str(raised.value).startswith(f"{path}:{line}: ")
    assert message in str(raised.value)


def test_the_deployment_override_is_used_and_checked_up_front(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    own = _file(tmp_path, "default: triage_only\n")
    monkeypatch.setenv(ROUTING_ENV, str(own))
    assert current_routing().path == own
    assert playbook_for(Category.IMPACT).id == "triage_only"
    monkeypatch.delenv(ROUTING_ENV)
    assert current_routing().path == DEFAULT_ROUTING_FILE
    assert playbook_for(Category.IMPACT).id == "impact"
    bad = _file(
        tmp_path, "default: triage_only\nroutes:\n  - playbook: gone\n    categories: [impact]\n"
    )
    with pytest.raises(
        ConfigError, match=r"GARRISON_PLAYBOOK_ROUTING.*routing.yaml:3: unknown playbook"
    ):
        check_playbook_routing(bad)


EXTERNAL_PACKAGE = """
from langgraph.graph import END, START, StateGraph

from agents.models import ProposedAction
from playbooks.base import Playbook, PlaybookState, propose
from tools.actions import ActionKind, BlockDomain
from tools.models import Category


def build(deps):
    async def block(state: PlaybookState) -> dict:
        domains = state["triage"].entities.domains
        proposals = [
            ProposedAction(action=BlockDomain(target=d), rationale="team rule") for d in domains
        ]
        return {"outcomes": propose(deps, proposals), "summary": "team playbook"}

    graph = StateGraph(PlaybookState)
    graph.add_node("block", block)
    graph.add_edge(START, "block")
    graph.add_edge("block", END)
    return graph


PLAYBOOK = Playbook(
    id="team_dns_sinkhole",
    title="A team's own: block the domains",
    categories=frozenset({Category.COMMAND_AND_CONTROL}),
    allowed_actions=frozenset({ActionKind.BLOCK_DOMAIN}),
    build=build,
)
NOT_A_PLAYBOOK = "oops"
"""


def _install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, entry_points: str) -> None:
    """A distribution as pip leaves it (a package and its dist-info) on sys.path."""
    site = tmp_path / "site"
    (site / "team_playbooks").mkdir(parents=True)
    (site / "team_playbooks" / "__init__.py").write_text(EXTERNAL_PACKAGE, encoding="utf-8")
    info = site / "team_playbooks-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: team-playbooks\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{entry_points}\n")
    monkeypatch.syspath_prepend(str(site))
    registry.registered_playbooks.cache_clear()
    registry._routing_at.cache_clear()


@pytest.fixture
def clean_registry():
    yield
    registry.registered_playbooks.cache_clear()
    registry._routing_at.cache_clear()


def test_a_separately_installed_playbook_is_registered_and_routed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_registry: None
) -> None:
    assert "team_dns_sinkhole" not in [p.id for p in registered_playbooks()]
    _install(tmp_path, monkeypatch, "sinkhole = team_playbooks:PLAYBOOK")
    found = registered_playbooks()
    assert [p.id for p in found[: len(BUILT_IN)]] == IDS  # built-ins first, in order
    assert found[-1].id == "team_dns_sinkhole" == get_playbook("team_dns_sinkhole").id
    own = _file(
        tmp_path,
        """
        default: hands_on_keyboard
        routes:
          - playbook: team_dns_sinkhole
            categories: [command_and_control]
        """,
    )
    monkeypatch.setenv(ROUTING_ENV, str(own))
    chosen = playbook_for(Category.COMMAND_AND_CONTROL)
    assert chosen.id == "team_dns_sinkhole"
    assert chosen.build  # compiles like a built-in one
    chosen.build(None).compile()  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("declared", "message"),
    [
        ("bad = team_playbooks:NOT_A_PLAYBOOK", "is a str, not a Playbook"),
        ("gone = team_playbooks_missing:PLAYBOOK", "cannot load"),
    ],
)
def test_a_broken_entry_point_is_named(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    clean_registry: None,
    declared: str,
    message: str,
) -> None:
    _install(tmp_path, monkeypatch, declared)
    with pytest.raises(PlaybookLoadError, match=f"entry point '{declared.split()[0]}'.*{message}"):
        registered_playbooks()


class _Inventory:
    """An inventory that knows one server and fails on anything else."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def get_asset(self, asset_id: str):
        from tools.models import Asset, Criticality

        self.asked.append(asset_id)
        if asset_id == "WEB01":
            return Asset(id="WEB01", kind=AssetKind.SERVER, criticality=Criticality.HIGH)
        raise TimeoutError("inventory down")


async def test_the_triage_activity_routes_on_asset_kinds_read_only_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agents.models import ExtractedEntities, TriageResult
    from orchestrator.activities.routing import route_triage
    from tools.models import Verdict

    triage = TriageResult(
        verdict=Verdict.MALICIOUS,
        confidence=0.9,
        severity=Severity.HIGH,
        category=Category.EXECUTION,
        entities=ExtractedEntities(hosts=["WS1", "WEB01"]),
    )
    inventory = _Inventory()
    assert (await route_triage(triage, inventory)).playbook_id == "execution"  # type: ignore[arg-type]
    assert inventory.asked == []  # the packaged routing has no asset-kind route: no reads
    own = _file(
        tmp_path,
        """
        default: hands_on_keyboard
        routes:
          - playbook: initial_access
            asset_kinds: [server]
        """,
    )
    monkeypatch.setenv(ROUTING_ENV, str(own))
    routed = await route_triage(triage, inventory)  # type: ignore[arg-type]
    assert routed.playbook_id == "initial_access"  # WEB01 is a server; WS1's read failed
    assert inventory.asked == ["WS1", "WEB01"]
    assert routed.model_copy(update={"playbook_id": ""}) == triage


def _site_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The team's module on sys.path, with no distribution metadata (no entry point)."""
    site = tmp_path / "plain"
    (site / "team_playbooks").mkdir(parents=True)
    (site / "team_playbooks" / "__init__.py").write_text(EXTERNAL_PACKAGE, encoding="utf-8")
    monkeypatch.syspath_prepend(str(site))
    registry._routing_at.cache_clear()


def test_a_playbook_declared_in_the_routing_file_is_loaded_and_routed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_registry: None
) -> None:
    _site_package(tmp_path, monkeypatch)
    own = _file(
        tmp_path,
        """
        default: hands_on_keyboard
        playbooks:
          team_dns_sinkhole: team_playbooks:PLAYBOOK
        routes:
          - playbook: team_dns_sinkhole
            categories: [command_and_control]
        """,
    )
    monkeypatch.setenv(ROUTING_ENV, str(own))
    assert "team_dns_sinkhole" not in [p.id for p in registered_playbooks()]
    assert playbook_for(Category.COMMAND_AND_CONTROL).id == "team_dns_sinkhole"
    assert get_playbook("team_dns_sinkhole").title == "A team's own: block the domains"


@pytest.mark.parametrize(
    ("declaration", "message"),
    [
        ("team_dns_sinkhole: team_playbooks", "is not module:attribute"),
        ("team_dns_sinkhole: team_playbooks_missing:PLAYBOOK", "cannot load"),
        ("team_dns_sinkhole: team_playbooks:NOT_A_PLAYBOOK", "is a str, not a Playbook"),
        ("other_id: team_playbooks:PLAYBOOK", "its id is 'team_dns_sinkhole', not 'other_id'"),
        ("credential_access: team_playbooks:PLAYBOOK", "is already registered"),
    ],
)
def test_a_wrong_declaration_is_an_error_naming_file_and_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    clean_registry: None,
    declaration: str,
    message: str,
) -> None:
    _site_package(tmp_path, monkeypatch)
    own = _file(tmp_path, f"default: hands_on_keyboard\nplaybooks:\n  {declaration}\n")
    with pytest.raises(RoutingError, match=rf"routing.yaml:3: .*{message}"):
        registry.current_routing(own)

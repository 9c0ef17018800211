"""PAN-OS wire mapping: object names, descriptions with expiry, XML answers to the error tree,
group and job parsing, settings, and the key auth over `httpx.MockTransport`."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

import httpx
import pytest
from pydantic import SecretStr

from tools.errors import AuthError, NotFoundError, PermanentToolError, TransientToolError
from tools.firewall.panos import (
    Blocked,
    Kind,
    PanOsFirewall,
    PanOsSettings,
    _address_element,
    _check,
    _expiry,
    _job_done,
    _job_id,
    _members,
    _to_blocked,
    block_description,
    object_name,
)
from tools.vendor_settings import VendorConfigError, load_vendor_settings

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def _answer(body: str, status: int = 200) -> httpx.Response:
    return httpx.Response(status, text=body, request=httpx.Request("POST", "https://fw/api/"))


def test_object_names_are_valid_panos_names() -> None:
    assert object_name("203.0.113.7") == "garrison-203.0.113.7"
    assert object_name("203.0.113.0/24") == "garrison-203.0.113.0_24"
    assert object_name("2001:db8::/32") == "garrison-2001-db8--_32"
    long = object_name("a" * 60 + ".evil.example")
    assert len(long) == 63 and long != object_name("b" * 60 + ".evil.example")


def test_description_records_expiry_and_comment() -> None:
    text = block_description("inc-7", NOW, 24)
    assert text.startswith("blocked by Garrison 2024-05-01T12:00:00+00:00")
    assert _expiry(text) == NOW + timedelta(hours=24)
    assert text.endswith("; inc-7")
    assert _expiry(block_description("", NOW, None)) is None
    assert len(block_description("x" * 1000, NOW, None)) == 255


def test_address_element_sets_the_object_and_its_membership_together() -> None:
    item = Blocked("garrison-evil.example", Kind.FQDN, "evil.example", "d <&>")
    root = ET.fromstring(f"<vsys>{_address_element(item, 'grp')}</vsys>")
    entry = root.find("./address/entry[@name='garrison-evil.example']")
    assert entry is not None and entry.findtext("fqdn") == "evil.example"
    assert entry.findtext("description") == "d <&>"
    assert entry.findtext("tag/member") == "garrison"
    assert root.findtext("./address-group/entry[@name='grp']/static/member") == item.name


def test_only_tagged_address_or_fqdn_entries_are_garrisons() -> None:
    tagged = ET.fromstring(
        "<entry name='garrison-x'><ip-netmask>10.0.0.1/32</ip-netmask>"
        "<tag><member>garrison</member></tag></entry>"
    )
    assert _to_blocked(tagged) == Blocked("garrison-x", Kind.IP, "10.0.0.1")
    untagged = ET.fromstring("<entry name='web'><ip-netmask>10.0.0.2</ip-netmask></entry>")
    assert _to_blocked(untagged) is None
    ranged = ET.fromstring(
        "<entry name='r'><ip-range>10.0.0.1-10.0.0.9</ip-range>"
        "<tag><member>garrison</member></tag></entry>"
    )
    assert _to_blocked(ranged) is None


def test_group_members_and_a_missing_group() -> None:
    found = ET.fromstring(
        '<response status="success" code="19"><result><entry name="g"><static>'
        "<member>a</member><member>b</member></static></entry></result></response>"
    )
    assert _members(found) == {"a", "b"}
    assert (
        _members(ET.fromstring('<response status="success" code="7"><result/></response>')) is None
    )


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (
            '<response status="error" code="403"><msg>Invalid Credential</msg></response>',
            403,
            AuthError,
        ),
        ('<response status="error" code="16"><msg>Unauthorized</msg></response>', 200, AuthError),
        (
            '<response status="error" code="7"><msg>No such node</msg></response>',
            200,
            NotFoundError,
        ),
        (
            '<response status="error" code="22"><msg>Session timed out</msg></response>',
            200,
            TransientToolError,
        ),
        (
            '<response status="error" code="12"><msg>Invalid object</msg></response>',
            200,
            PermanentToolError,
        ),
        ("<html>gateway</html>", 502, TransientToolError),
        ("not xml", 200, TransientToolError),
        ('<!DOCTYPE x [<!ENTITY a "b">]><response status="success"/>', 200, PermanentToolError),
    ],
)
def test_answers_map_to_the_error_tree(body: str, status: int, error: type[Exception]) -> None:
    with pytest.raises(error):
        _check(_answer(body, status))


def test_not_present_is_accepted_where_absence_is_the_goal() -> None:
    root = _check(
        _answer('<response status="error" code="7"><msg>x</msg></response>'), missing_ok=True
    )
    assert root.get("code") == "7"


def test_commit_job_parsing() -> None:
    queued = ET.fromstring('<response status="success"><result><job>5</job></result></response>')
    assert _job_id(queued) == "5"
    nothing = ET.fromstring(
        '<response status="success"><msg>There are no changes to commit.</msg></response>'
    )
    assert _job_id(nothing) is None

    def job(status: str, result: str) -> ET.Element:
        return ET.fromstring(
            f'<response status="success"><result><job><id>5</id><status>{status}</status>'
            f"<result>{result}</result><details><line>rule is invalid</line></details>"
            "</job></result></response>"
        )

    assert _job_done(job("ACT", "PEND")) is False
    assert _job_done(job("FIN", "OK")) is True
    with pytest.raises(PermanentToolError, match="rule is invalid"):
        _job_done(job("FIN", "FAIL"))


def test_settings_need_a_key_or_a_username_and_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GARRISON_PANOS_BASE_URL", "https://fw.example")
    monkeypatch.setenv("GARRISON_PANOS_USERNAME", "garrison")
    with pytest.raises(VendorConfigError, match="GARRISON_PANOS_PASSWORD"):
        load_vendor_settings(PanOsSettings)
    monkeypatch.setenv("GARRISON_PANOS_PASSWORD", "s3cret")
    settings = load_vendor_settings(PanOsSettings)
    assert settings.address_group == "garrison-blocked" and settings.vsys == "vsys1"
    assert "s3cret" not in repr(settings)
    monkeypatch.delenv("GARRISON_PANOS_BASE_URL")
    with pytest.raises(VendorConfigError, match="GARRISON_PANOS_BASE_URL is required"):
        load_vendor_settings(PanOsSettings)


# --- auth over MockTransport --------------------------------------------------------------------

GROUP = (
    '<response status="success" code="19"><result><entry name="garrison-blocked">'
    "<static><member>p</member></static></entry></result></response>"
)


class FakePanOs:
    """Answers keygen and reads; refuses keys it did not issue, or every key once `expire`d."""

    def __init__(self) -> None:
        self.issued: list[str] = []
        self.valid: set[str] = set()
        self.keys_seen: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        form = {k: v[-1] for k, v in parse_qs(request.content.decode()).items()}
        if form.get("type") == "keygen":
            if form.get("password") != "right":
                return httpx.Response(403, text='<response status="error" code="403"/>')
            key = f"K{len(self.issued) + 1}"
            self.issued.append(key)
            self.valid.add(key)
            return httpx.Response(
                200, text=f'<response status="success"><result><key>{key}</key></result></response>'
            )
        key = request.headers.get("x-pan-key", "")
        self.keys_seen.append(key)
        if key not in self.valid:
            return httpx.Response(
                403,
                text='<response status="error" code="403"><msg>Invalid Credential</msg></response>',
            )
        if "address-group" in form.get("xpath", ""):
            return httpx.Response(200, text=GROUP)
        return httpx.Response(200, text='<response status="success" code="7"><result/></response>')


def _firewall(fake: FakePanOs, **fields: object) -> PanOsFirewall:
    settings = PanOsSettings(base_url="https://fw.example", **fields)  # pyright: ignore[reportArgumentType]
    return PanOsFirewall(settings, httpx.MockTransport(fake))


async def test_key_is_generated_once_then_reused() -> None:
    fake = FakePanOs()
    tool = _firewall(fake, username="garrison", password=SecretStr("right"))
    await tool.list_blocked()
    await tool.list_blocked()
    assert fake.issued == ["K1"] and set(fake.keys_seen) == {"K1"}
    await tool.aclose()


async def test_a_refused_key_is_regenerated_once() -> None:
    fake = FakePanOs()
    tool = _firewall(fake, username="garrison", password=SecretStr("right"))
    await tool.list_blocked()
    fake.valid.clear()  # the key lifetime ran out
    assert await tool.list_blocked() == []
    assert fake.issued == ["K1", "K2"]
    await tool.aclose()


async def test_refused_credentials_raise_auth_error() -> None:
    fake = FakePanOs()
    tool = _firewall(fake, username="garrison", password=SecretStr("wrong"))
    with pytest.raises(AuthError, match="GARRISON_PANOS_USERNAME"):
        await tool.list_blocked()
    await tool.aclose()


async def test_a_static_key_is_sent_and_never_regenerated() -> None:
    fake = FakePanOs()
    tool = _firewall(fake, api_key=SecretStr("static"))
    with pytest.raises(AuthError):
        await tool.list_blocked()
    assert fake.issued == [] and fake.keys_seen == ["static"]
    await tool.aclose()

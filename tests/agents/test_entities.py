from __future__ import annotations

from agents.entities import AssetIndex, extract_entities
from tests.agents.fakes import alert, lab_environment
from tools.models import FileRef, Severity

SHA = "a" * 64


def test_extractor_normalises_hosts_and_keeps_typed_shapes() -> None:
    alerts = [
        alert("x1", "t", Severity.HIGH, [("T1071", "command-and-control")],
              host="prd01.PANDALAB.com", user="PANDALAB\\Pedro.Gustavo", pid=77,
              dst_ip="203.0.113.9", domain="Evil-C2.example.", file_path=r"C:\x.exe"),
        alert("x2", "t", Severity.LOW, [], host="172.18.39.7", user="NT AUTHORITY\\SYSTEM",
              src_ip="172.18.39.7", dst_ip="0.0.0.0/0", domain="not a domain; rm -rf"),
        alert("x3", "t", Severity.LOW, [], host="unknown-box", user="WS02$", dst_ip="127.0.0.1"),
    ]  # fmt: skip
    entities = extract_entities(alerts, AssetIndex(lab_environment()))
    assert entities.hosts == ["PRD01", "WS02", "unknown-box"]
    assert entities.users == ["pandalab\\pedro.gustavo"]
    assert entities.ips == ["203.0.113.9", "172.18.39.7"]  # no CIDR, no loopback
    assert entities.domains == ["evil-c2.example"]
    assert entities.processes == ["PRD01:77"]
    assert entities.files == [r"PRD01:C:\x.exe"]


def test_extractor_reads_hashes_only_in_their_shape() -> None:
    a = alert("x1", "t", Severity.HIGH, [], host="PRD01")
    file = a.entities.model_copy(update={"file": FileRef(sha256=SHA.upper())})
    bad = a.entities.model_copy(update={"file": FileRef(sha256="DC01")})
    got = extract_entities(
        [a.model_copy(update={"entities": file}), a.model_copy(update={"entities": bad})],
        AssetIndex(lab_environment()),
    )
    assert got.sha256 == [SHA]


def test_an_address_two_records_claim_belongs_to_the_most_specific_one() -> None:
    env = lab_environment()
    dc = env.assets[1].model_copy(update={"ips": ["172.18.39.5", "172.18.39.6", "172.18.39.7"]})
    index = AssetIndex(env.model_copy(update={"assets": [dc, env.assets[0], env.assets[2]]}))
    owners = [index.asset_for_ip(ip) for ip in ("172.18.39.6", "172.18.39.5")]
    assert [a.id if a else None for a in owners] == ["PRD01", "DC01"]
    assert index.own_ips("DC01") == {"172.18.39.5"}
    assert index.own_ips("PRD01") == {"172.18.39.6"}

"""How a process is judged from its record and lineage: drop folders, implants, remote DCOM."""

from __future__ import annotations

from datetime import timedelta

from agents.telemetry import (
    HostTelemetry,
    alert_records,
    judge_process,
    remote_activation,
)
from agents.triage.stages import implant_lineage
from tests.agents.fakes import T0, alert
from tools.models import ProcessRef, Severity
from tools.results import LogonEvent, ProcessEvent

NETS = ["172.18.0.0/16"]
GRUNT = r"C:\Users\bob\Desktop\GruntHTTP.exe"
EXCEL = r'"C:\Program Files\Microsoft Office\Root\Office16\EXCEL.EXE" /automation -Embedding'


def proc(pid: int, image: str, parent_pid: int, parent_image: str, **extra: object) -> ProcessEvent:
    fields = {"time": T0, "host": "WS5", "user": "THESHIRE\\bob", "cmd_line": image} | extra
    return ProcessEvent.model_validate(
        {"pid": pid, "image": image, "parent_pid": parent_pid, "parent_image": parent_image}
        | fields
    )


def implant_tree() -> HostTelemetry:
    return HostTelemetry(
        host="WS5",
        processes=[
            proc(2064, GRUNT, 900, r"C:\Windows\explorer.exe"),
            proc(6960, r"C:\Windows\System32\cmd.exe", 2064, GRUNT,
                 cmd_line=r'"cmd.exe" /c sc.exe \\DC01 query IKEEXT'),
            proc(3108, r"C:\Windows\System32\sc.exe", 6960, r"C:\Windows\System32\cmd.exe",
                 cmd_line=r"sc.exe \\DC01 query IKEEXT"),
        ],
    )  # fmt: skip


def test_a_program_run_from_a_drop_folder_is_suspect_and_its_shells_more() -> None:
    telemetry = implant_tree()
    grunt, shell, sc = telemetry.processes
    assert [s.weight for s in judge_process(grunt, telemetry, NETS)] == [1.5, 1.5]
    assert 2.5 in [s.weight for s in judge_process(shell, telemetry, NETS)]
    assert judge_process(sc, telemetry, NETS) == []
    installed = proc(1, r"C:\Program Files\App\app.exe", 900, r"C:\Windows\explorer.exe")
    assert judge_process(installed, HostTelemetry(host="WS5", processes=[installed]), NETS) == []


def test_the_folder_of_a_parent_comes_from_its_own_record() -> None:
    """Some EDRs name only the parent's file in the child's record: the same telemetry must give
    the same judgement whichever EDR recorded it."""
    shell = proc(6960, r"C:\Windows\System32\cmd.exe", 2064, GRUNT)
    orphan = HostTelemetry(host="WS5", processes=[shell])
    assert judge_process(shell, orphan, NETS) == []
    query = alert("q1", "SC.EXE Query Execution", Severity.LOW, [("T1007", "discovery")],
                  host="WS5", pid=6960, name="cmd.exe")  # fmt: skip
    assert implant_lineage(orphan, [query]) == []


def test_discovery_under_an_implant_has_implant_lineage() -> None:
    query = alert("q1", "SC.EXE Query Execution", Severity.LOW, [("T1007", "discovery")],
                  host="WS5", pid=3108, name="sc.exe")  # fmt: skip
    assert len(implant_lineage(implant_tree(), [query])) == 1
    by_hand = HostTelemetry(
        host="WS5",
        processes=[
            proc(6960, r"C:\Windows\System32\cmd.exe", 900, r"C:\Windows\explorer.exe"),
            proc(3108, r"C:\Windows\System32\sc.exe", 6960, r"C:\Windows\System32\cmd.exe"),
        ],
    )
    assert implant_lineage(by_hand, [query]) == []


def test_discovery_under_an_encoded_powershell_has_implant_lineage() -> None:
    encoded = "powershell.exe -noP -sta -w 1 -enc " + "SQBGACgAJABQAFMAVgBlAFIA" * 4
    telemetry = HostTelemetry(
        host="WS5",
        processes=[
            proc(7456, r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe", 900,
                 r"C:\Windows\explorer.exe", cmd_line=encoded),
            proc(5956, r"C:\Windows\System32\net.exe", 7456, "powershell.exe",
                 cmd_line="net localgroup Administrators"),
        ],
    )  # fmt: skip
    recon = alert("n1", "Net.EXE Execution", Severity.LOW, [("T1069.001", "discovery")],
                  host="WS5", pid=5956, name="net.exe")  # fmt: skip
    assert len(implant_lineage(telemetry, [recon])) == 1


def test_alert_without_pid_finds_its_process_by_image_and_account() -> None:
    excel = proc(1324, r"C:\Program Files\Office16\EXCEL.EXE", 896, "svchost.exe",
                 time=T0 - timedelta(seconds=5))  # fmt: skip
    other = proc(77, r"C:\Program Files\Office16\EXCEL.EXE", 896, "svchost.exe",
                 user="THESHIRE\\alice", time=T0 - timedelta(seconds=5))  # fmt: skip
    telemetry = HostTelemetry(host="WS6", processes=[excel, other])
    a = alert("x1", "Office COM", Severity.MEDIUM, [], host="WS6", user="theshire\\bob")
    no_pid = a.entities.model_copy(update={"process": ProcessRef(name="EXCEL.EXE")})
    assert [r.pid for r in alert_records(a.model_copy(update={"entities": no_pid}), telemetry)] == [
        1324
    ]


def _logon(user: str, src: str, at: timedelta) -> LogonEvent:
    return LogonEvent(time=T0 + at, host="WS6", user=user, logon_type=3, src_ip=src)


def test_com_server_started_for_a_network_logon_is_a_remote_activation() -> None:
    excel = proc(1324, r"C:\Office16\EXCEL.EXE", 896, "svchost.exe", cmd_line=EXCEL)
    logon = _logon("THESHIRE.LOCAL\\bob", "172.18.39.5", -timedelta(seconds=2))
    telemetry = HostTelemetry(host="WS6", processes=[excel], logons=[logon])
    assert remote_activation(excel, telemetry) == logon
    # not for another account, not a minute and more later, not from the host itself
    for other in (
        _logon("THESHIRE\\alice", "172.18.39.5", -timedelta(seconds=2)),
        _logon("THESHIRE\\bob", "172.18.39.5", -timedelta(seconds=90)),
    ):
        assert remote_activation(excel, HostTelemetry(host="WS6", logons=[other])) is None
    own = frozenset({"172.18.39.5"})
    assert remote_activation(excel, telemetry, own) is None
    plain = proc(1324, r"C:\Office16\EXCEL.EXE", 896, "explorer.exe", cmd_line="EXCEL.EXE a.xlsx")
    assert remote_activation(plain, telemetry) is None

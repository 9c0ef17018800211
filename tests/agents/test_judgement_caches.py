"""The command-line scan and a process's judgement are kept once computed: the kept answer is
the one computing gives, a changed recording is judged again, and what is kept is bounded."""

from __future__ import annotations

from datetime import timedelta

from agents import knowledge
from agents.knowledge import CMDLINE_CACHE_SIZE, CMDLINE_INDICATORS, cmdline_indicators
from agents.processes import ProcessKey
from agents.telemetry import HostTelemetry, _judge, judge_process
from tests.agents.fakes import T0
from tools.results import NetworkConnection, ProcessEvent

LINES = [
    r"REG.exe ADD HKCU\Environment /v UserInitMprLogonScript /d C:\Temp\a.bat /f",
    r"rundll32.exe C:\Windows\System32\comsvcs.dll, MiniDump 624 C:\t\l.dmp full",
    "powershell -nop -w hidden -enc SQBFAFgA",
    r"C:\Windows\system32\svchost.exe -k netsvcs -p",
    "cmd.exe /c whoami " + "x" * 9_000 + " -enc AAAA",  # past the 8 KiB scanned
    "",
]


def _uncached(cmd_line: str | None) -> list[tuple[float, str]]:
    text = (cmd_line or "")[:8_192]
    return [(w, why) for pattern, w, why in CMDLINE_INDICATORS if text and pattern.search(text)]


def test_kept_indicators_are_those_the_scan_finds_in_its_order() -> None:
    for line in [*LINES, None]:
        first = cmdline_indicators(line)
        assert first == _uncached(line)
        first.append((9.0, "a caller's own list"))
        assert cmdline_indicators(line) == _uncached(line)  # a fresh list each call
    assert any(cmdline_indicators(line) for line in LINES)


def test_the_command_line_cache_is_bounded() -> None:
    cached = knowledge._indicators_of  # pyright: ignore[reportPrivateUsage]
    for n in range(CMDLINE_CACHE_SIZE + 50):
        cmdline_indicators(f"cmd.exe /c echo {n}")
    info = cached.cache_info()
    assert info.maxsize == CMDLINE_CACHE_SIZE
    assert info.currsize <= CMDLINE_CACHE_SIZE


def proc(pid: int, image: str, parent: int, cmd_line: str) -> ProcessEvent:
    return ProcessEvent(time=T0, host="WS5", pid=pid, image=image, parent_pid=parent,
                        parent_image=r"C:\Windows\explorer.exe", cmd_line=cmd_line,
                        user="CORP\\bob")  # fmt: skip


def test_a_kept_judgement_is_the_computed_one_and_follows_the_recording() -> None:
    tool = proc(100, r"C:\Tools\agent.exe", 4, r"C:\Tools\agent.exe")
    telemetry = HostTelemetry(host="WS5", processes=[tool])
    assert judge_process(tool, telemetry, ["10.0.0.0/8"]) == []
    # more records appended: the process is judged again, with its new child and connection
    child = proc(101, r"C:\Windows\System32\cmd.exe", 100, "cmd.exe /c whoami")
    telemetry.processes.append(child)
    telemetry.connections.append(
        NetworkConnection(time=T0 + timedelta(seconds=1), host="WS5", pid=100,
                          image=tool.image, dst_ip="8.8.4.4", dst_port=443)
    )  # fmt: skip
    judged = judge_process(tool, telemetry, ["10.0.0.0/8"])
    assert judged == _judge(tool, telemetry, ["10.0.0.0/8"])
    assert [s.weight for s in judged] == [1.5, 2.0]
    # other internal networks: another answer, not the kept one
    inside = judge_process(tool, telemetry, ["8.8.0.0/16"])
    assert inside == _judge(tool, telemetry, ["8.8.0.0/16"]) != judged
    # a caller's changes to the list it got do not reach the kept answer
    judged.clear()
    assert judge_process(tool, telemetry, ["10.0.0.0/8"]) == _judge(tool, telemetry, ["10.0.0.0/8"])
    # new lists of records: what was kept for the old ones is dropped
    telemetry.processes = [tool]
    telemetry.connections = []
    assert judge_process(tool, telemetry, ["10.0.0.0/8"]) == []
    kept = telemetry._judged  # pyright: ignore[reportPrivateUsage]
    assert len(kept) == 1


def test_the_estates_servers_are_found_again_when_the_connections_change() -> None:
    def conn(ip: str, port: int) -> NetworkConnection:
        return NetworkConnection(time=T0, host="WS5", pid=7, dst_ip=ip, dst_port=port)

    telemetry = HostTelemetry(host="WS5", connections=[conn("10.0.0.2", 53), conn("1.2.3.4", 443)])
    assert telemetry.infrastructure() == {"10.0.0.2"}
    telemetry.infrastructure().add("a caller's own set")
    assert telemetry.infrastructure() == {"10.0.0.2"}
    telemetry.connections.append(conn("10.0.0.3", 88))
    assert telemetry.infrastructure() == {"10.0.0.2", "10.0.0.3"}
    telemetry.connections = [conn("10.0.0.4", 389)]
    assert telemetry.infrastructure() == {"10.0.0.4"}
    assert telemetry.connections_of_key(ProcessKey.unrecorded("WS5", 7, None)) == [
        conn("10.0.0.4", 389)
    ]

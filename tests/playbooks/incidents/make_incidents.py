"""Writes the two incidents the corpus lacks, in the recorded-incident format (v1)."""
import gzip, json
from pathlib import Path

ROOT = Path("tests/playbooks/incidents")
T = "2026-03-02T10:00:{:02d}.000Z"
W3WP = r"C:\Windows\System32\inetsrv\w3wp.exe"
CMD = r"C:\Windows\System32\cmd.exe"
SHELL = r"C:\inetpub\wwwroot\aspnet_client\help.aspx"
ATTACKER = "203.0.113.7"

def sysmon(n, sec, **fields):
    return {"@timestamp": T.format(sec), "host": "WEB01", "event_source": "sysmon", "EventID": n,
            "Channel": "Microsoft-Windows-Sysmon/Operational", "Hostname": "WEB01.corp.example", **fields}

web_events = [
    sysmon(3, 1, ProcessId="4100", Image=W3WP, User="IIS APPPOOL\\DefaultAppPool", Protocol="tcp",
           Initiated="false", SourceIp=ATTACKER, SourcePort="51514", DestinationIp="10.40.0.10", DestinationPort="443"),
    sysmon(11, 2, ProcessId="4100", Image=W3WP, TargetFilename=SHELL, User="IIS APPPOOL\\DefaultAppPool"),
    sysmon(1, 5, ProcessId="5120", Image=CMD, CommandLine='cmd.exe /c whoami /all', User="IIS APPPOOL\\DefaultAppPool",
           ParentProcessId="4100", ParentImage=W3WP, ParentCommandLine='c:\\windows\\system32\\inetsrv\\w3wp.exe -ap "DefaultAppPool"'),
    sysmon(1, 6, ProcessId="5188", Image=r"C:\Windows\System32\whoami.exe", CommandLine="whoami /all",
           User="IIS APPPOOL\\DefaultAppPool", ParentProcessId="5120", ParentImage=CMD, ParentCommandLine="cmd.exe /c whoami /all"),
]

def alert(uid, title, sev, tech, tactic, sec, evidence, **ent):
    return {"uid": uid, "time": T.format(sec), "title": title, "severity": sev, "product": "sigma",
            "rule": {"uid": f"test-{uid}", "name": title, "author": "Garrison tests"},
            "attacks": [{"technique": tech, "tactic": tactic}], "entities": ent, "evidence": evidence}

web = {
    "schema": "recorded-incident/1", "id": "test-webshell-web01",
    "title": "An exploited IIS application writes a web shell on WEB01, which runs whoami",
    "source": {"dataset": "garrison-tests", "ref": "written for tests/playbooks", "commit": "-", "license": "Apache-2.0", "attribution": "Garrison"},
    "environment": {
        "assets": [{"id": "WEB01", "hostname": "WEB01.corp.example", "kind": "server", "criticality": "medium", "ips": ["10.40.0.10"], "os": "windows"}],
        "identities": [], "internal_networks": ["10.40.0.0/16"], "protected": []},
    "alerts": [
        alert("w1", "Web Shell Written By Web Server Process", "high", "T1505.003", "persistence", 2, [1],
              host="WEB01", user="IIS APPPOOL\\DefaultAppPool", process={"pid": 4100, "name": "w3wp.exe"},
              file={"path": SHELL, "sha256": None}),
        alert("w2", "Shell Spawned By IIS Worker After Inbound Exploit", "high", "T1190", "initial-access", 5, [0, 2],
              host="WEB01", user="IIS APPPOOL\\DefaultAppPool", src_ip=ATTACKER,
              process={"pid": 5120, "name": "cmd.exe", "cmd_line": "cmd.exe /c whoami /all"}),
        alert("w3", "Whoami Executed By Web Server Account", "medium", "T1033", "discovery", 6, [3],
              host="WEB01", user="IIS APPPOOL\\DefaultAppPool", process={"pid": 5188, "name": "whoami.exe", "cmd_line": "whoami /all"}),
    ],
    "truth": {"verdict": "malicious", "category": "initial_access", "techniques": ["T1190", "T1505.003", "T1033"],
              "compromised": {"assets": ["WEB01"], "identities": [], "indicators": {"ips": [ATTACKER], "domains": [], "sha256": []}},
              "expected_actions": [{"kind": "isolate_host", "target": "WEB01"}, {"kind": "block_ip", "target": ATTACKER}],
              "acceptable_actions": [{"kind": "remove_persistence", "target": f"WEB01:{SHELL}"},
                                     {"kind": "kill_process", "target": "WEB01:4100"}, {"kind": "kill_process", "target": "WEB01:5120"}, {"kind": "kill_process", "target": "WEB01:5188"}],
              "notes": "initial access exploit: isolate the server, block the source; the web shell is the artefact; killing the exploited worker (w3wp 4100) recycles the app pool, IIS starts a new one"},
    "analyst": {"policy": "oracle", "latency_s": 60},
}

for spec, events in ((web, web_events),):
    folder = ROOT / spec["id"]; folder.mkdir(parents=True, exist_ok=True)
    (folder / "incident.json").write_text(json.dumps(spec, indent=1) + "\n")
    with gzip.open(folder / "telemetry.jsonl.gz", "wt") as out:
        for e in events: out.write(json.dumps(e) + "\n")

"""Audio and video capture by the attacker's tools (T1123, T1125), from the device consent store.

Windows' Capability Access Manager records every desktop program that uses the microphone or the
webcam under `...\\CapabilityAccessManager\\ConsentStore\\<device>\\NonPackaged\\<program path>`
(the path's `\\` written `#`), setting `LastUsedTimeStart`/`LastUsedTimeStop` as it starts and
stops. The writer is the service (svchost), never the program, so the rules that watch the store
raise their alert on the service: the program is only in the key.

Video calls, dictation and recorders use the devices every day, so the store alone proves
nothing; the program using them does. A shell or script host (`processes.yaml` `shells`:
PowerShell, cmd, the script hosts, rundll32) has no business with a microphone: that is an
implant's module recording from inside it (Meterpreter's `record_mic`, a PowerShell capture
script). A program run from a drop folder (Desktop, Downloads, Documents, Public: `estate.yaml`)
was brought by hand, not installed as a recorder; AppData is not enough, as meeting clients
install there. Either is collection by the attacker: triage counts it as proof of an attack and
as the collection stage (`agents/triage/corroboration.py`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from agents.estate import in_drop_folder
from agents.knowledge import SHELLS, image_name
from agents.telemetry import HostTelemetry

CONSENT_STORE = re.compile(
    r"\\capabilityaccessmanager\\consentstore\\(microphone|webcam)\\nonpackaged\\([^\\]+)", re.I
)
CAPTURE_STAGE_WEIGHT = 5.0  # as a medium alert (2) on a collection technique (1.5) with tradecraft


@dataclass(frozen=True)
class Capture:
    host: str
    device: str  # microphone or webcam
    program: str  # the path the store names

    def summary(self) -> str:
        return f"{self.program[:200]} used the {self.device} on {self.host}"


def captures(telemetry: HostTelemetry) -> list[Capture]:
    """The devices used by programs an attacker runs (see the module docstring), one per device
    and program."""
    found: dict[tuple[str, str], Capture] = {}
    for write in telemetry.registry:
        match = CONSENT_STORE.search(write.key)
        if match is None:
            continue
        device, program = match.group(1).lower(), match.group(2).replace("#", "\\")
        if not _attackers_program(program):
            continue
        found.setdefault((device, program.lower()), Capture(telemetry.host, device, program))
    return list(found.values())


def _attackers_program(program: str) -> bool:
    return image_name(program) in SHELLS or in_drop_folder(program)

"""Defender Live Response through one library script, `garrison.ps1` (its text is in
docs/vendors/defender.md): `-Action <verb> -Target '<pid or artefact>'`, answering one word.

Verbs: `ps` (present|absent), `kill` (done|absent), `exists` (present|absent) and `remove`
(done|absent) for registry values and files. Targets are validated before they reach PowerShell:
they come from attacker-influenced alerts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from tools.errors import PermanentToolError

# No quotes, `$`, backticks, `;`, `|`, `&`, redirections or newlines: nothing PowerShell expands.
_SAFE = re.compile(r"[A-Za-z0-9 _.:\\\-{}()@#%+,=~\[\]]{1,1000}")
_ANSWERS = {"present", "absent", "done"}


def live_response_body(script: str, action: str, target: str, comment: str) -> dict[str, Any]:
    if not _SAFE.fullmatch(target.strip()):
        raise PermanentToolError(f"defender: refusing Live Response target {target[:100]!r}")
    args = f"-Action {action} -Target '{target.strip()}'"
    params = [{"key": "ScriptName", "value": script}, {"key": "Args", "value": args}]
    return {"Commands": [{"type": "RunScript", "params": params}], "Comment": comment}


def script_answer(result: Mapping[str, Any]) -> str:
    """The script's one-word answer; a non-zero exit or anything else is a permanent error."""
    output = str(result.get("script_output") or "").strip().lower()
    if result.get("exit_code") not in (0, None) or output not in _ANSWERS:
        errors = str(result.get("script_errors") or "")[:200]
        raise PermanentToolError(f"defender: {result.get('script_name')} failed: {errors}")
    return output

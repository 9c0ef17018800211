"""One human, one identity string: how every part of Garrison spells and compares a decider.

The approval gate, `ApprovalService`, the approver directory and the audit log all compare
identities, and they must agree: `" alice"`, `"Alice"` and `"alice"` are one approver, never
two. `canonical_identity` is the one spelling:

- Unicode NFKC-normalised (full-width and ligature forms fold to plain letters), trimmed;
- case-folded (the directory is case-insensitive, as Slack, Entra ID and Okta logins are);
- Slack identities `slack:<user id>` keep Slack's upper-case id;
- refused when empty, too long, or ambiguous: control or invisible format characters (zero-width
  joiners, bidi overrides), or whitespace inside the name, where two people could be told apart
  only by what nobody can see.

Pure and deterministic: it runs inside workflow code too.
"""

from __future__ import annotations

import re
import unicodedata

MAX_IDENTITY = 128
SLACK_PREFIX = "slack:"
_SLACK_ID = re.compile(r"[UW][A-Z0-9]{2,20}")
# Letters, digits and the punctuation of logins and e-mail addresses; nothing else is a name.
_ALLOWED = re.compile(r"[\w.@+\-:\\/']+")


class IdentityError(ValueError):
    """An identity that cannot name exactly one human; the message says why."""


def canonical_identity(raw: str) -> str:
    """The one spelling of `raw`, or IdentityError naming what is wrong with it."""
    text = unicodedata.normalize("NFKC", raw).strip()
    if not text:
        raise IdentityError("the identity is empty")
    if len(text) > MAX_IDENTITY:
        raise IdentityError(f"the identity is longer than {MAX_IDENTITY} characters")
    invisible = [c for c in text if unicodedata.category(c) in {"Cc", "Cf", "Zl", "Zp"}]
    if invisible:
        raise IdentityError(
            f"the identity contains a control or invisible character (U+{ord(invisible[0]):04X})"
        )
    if any(c.isspace() for c in text):
        raise IdentityError("the identity contains whitespace")
    if not _ALLOWED.fullmatch(text):
        raise IdentityError("the identity contains characters no login name uses")
    if text[: len(SLACK_PREFIX)].casefold() == SLACK_PREFIX:
        slack_user = text[len(SLACK_PREFIX) :].upper()
        if not _SLACK_ID.fullmatch(slack_user):
            raise IdentityError(f"{text!r} is not a Slack user id")
        return SLACK_PREFIX + slack_user
    return text.casefold()


def same_identity(a: str, b: str) -> bool:
    """Whether two identities name one human (an invalid one names nobody)."""
    try:
        return canonical_identity(a) == canonical_identity(b)
    except IdentityError:
        return False

"""Attacker-controlled text on its way to humans (tickets today, chat cards later): defanged so
that no name becomes a link and no markup becomes a mention. Pure: safe in workflow code."""

from __future__ import annotations

import re

# No word boundary: `%3Chttps://` or `xhttps://` must not survive as a link either.
_SCHEME = re.compile(r"(?i)h(tt)(ps?)://")
_OTHER_SCHEME = re.compile(r"(?<!\[)://(?!\])")
_DOT_IN_NAME = re.compile(r"(?<=[0-9A-Za-z-])\.(?=[0-9A-Za-z-])")
_AT_MENTION = re.compile(r"(?i)@(channel|here|everyone)\b")


def defang(text: str) -> str:
    """`https://evil.example/x` -> `hxxps[://]evil[.]example/x`; `<!channel>` -> `&lt;!channel&gt;`;
    `@here` -> `@\u200bhere`. Idempotent enough to apply once per rendering."""
    return neutralise(text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))


def neutralise(text: str) -> str:
    """`defang` without its `&`, `<`, `>` escaping, for a renderer that escapes those itself
    (the console's autoescaping templates): no name becomes a link, no `@channel` a mention."""
    text = _SCHEME.sub(lambda m: f"hxx{m.group(2)}[://]", text)
    text = _OTHER_SCHEME.sub("[://]", text)
    text = _DOT_IN_NAME.sub("[.]", text)
    return _AT_MENTION.sub(lambda m: "@\u200b" + m.group(1), text)

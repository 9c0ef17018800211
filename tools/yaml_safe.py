"""Safe YAML parsed by libyaml's C parser when PyYAML was built with it.

The constructors are PyYAML's safe ones either way (`CSafeLoader` is the C scanner and parser under
`SafeConstructor`), so a document means the same; only the parsing is faster. Reading the knowledge
base, the policy and the account fields with the pure-Python parser took about 0.8 s of every
process start (the knowledge base alone 0.6 s: `python -X importtime`), before any work."""

from __future__ import annotations

from typing import Any

import yaml

SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def safe_load(text: str) -> Any:
    """`yaml.safe_load`, on the C parser when there is one."""
    return yaml.load(text, Loader=SafeLoader)  # noqa: S506 - a safe loader

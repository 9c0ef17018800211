"""OASIS CACAO Security Playbooks v2.0 for Garrison playbooks: `export.py` writes a registered
playbook's graph as a CACAO workflow, `interpret.py` builds a Garrison `Playbook` (a LangGraph
`StateGraph`) from a CACAO document, `document.py` validates one against the shipped JSON schema
subset (`cacao-v2.schema.json`) and `mapping.py` holds the documented mapping from CACAO commands
and variables to Garrison action kinds and incident entities (docs/cacao.md).

Garrison's own facts (the node each action step runs, the routers of conditional steps, allowed
action kinds, categories, declared inverses, approval tiers) travel in one CACAO extension,
`EXTENSION_ID`, so a Garrison export imports back to the same graph while any other consumer
reads an ordinary CACAO playbook.
"""

from __future__ import annotations

EXTENSION_ID = "extension-definition--6f1a5c1e-8f0b-4c1e-9a57-2b1f3f4c9d10"
GARRISON_IDENTITY = "identity--0b5d7a3e-3f55-4e8e-8a6f-1c2d3e4f5a6b"
EXTENSION_SCHEMA = "Garrison docs/cacao.md, section The Garrison extension"  # text, as STIX allows
EXTENSION_VERSION = "1.0.0"

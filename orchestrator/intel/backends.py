"""Backends whose threat intelligence also consults what sharing partners published: the
configured vendor (or twin) first, then the store's shared indicators (`garrison intel pull`),
through `SharedThreatIntel`. The runtime wraps its backends so when the deployment shares
intelligence (`GARRISON_INTEL_FILE` set); without it, nothing changes."""

from __future__ import annotations

import dataclasses

from orchestrator.backends import Backends
from tools.intel.base import SharedIndicatorSource
from tools.intel.shared import SharedThreatIntel
from tools.toolsets import ReadTools, ResponseTools


class SharedIntelBackends:
    """Implements `Backends`; the wrapped backends are closed by whoever owns them."""

    def __init__(self, inner: Backends, source: SharedIndicatorSource) -> None:
        self.inner = inner
        self._source = source

    def read_tools(self, incident_id: str) -> ReadTools:
        tools = self.inner.read_tools(incident_id)
        return dataclasses.replace(tools, intel=SharedThreatIntel(tools.intel, self._source))

    def response_tools(self, incident_id: str) -> ResponseTools:
        return self.inner.response_tools(incident_id)

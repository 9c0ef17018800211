"""Persistence artefacts and injected processes, from one host's telemetry around an incident.

`artefacts.py` finds the attacker's persistence (autostart values and files, scheduled tasks,
services, WMI subscriptions, web shells), `injection.py` the processes an attacker process
injected into; both tell the attacker's doing from everyone else's with `attribution.py`.
"""

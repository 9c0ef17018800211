"""Ingestion: every alert that reaches Garrison (the HTTP API, the pollers, `garrison simulate`,
`garrison incidents replay`, `garrison rehearse`) goes through here, in one order: normalise
(`shapes/`), deduplicate by fingerprint, group into an incident, store, then signal-with-start the
incident's workflow (`dispatch.py`). The store is the source of truth: an alert is committed
before it is acknowledged, and a sweeper re-signals any committed alert whose signal was lost.
"""

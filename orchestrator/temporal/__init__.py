"""Garrison's connection to Temporal: the embedded dev server, clients and task-queue names.

Deliberately empty of imports: `orchestrator.temporal.client` and `orchestrator.temporal.embedded`
do I/O and are imported by composition roots only, never by workflow modules.
"""

"""The interceptor every Garrison worker installs on its activities: each heartbeats while it runs
(`heartbeat.py`), and each failure it raises is cut to a size Temporal keeps (`errors.py`), so a
dead worker is noticed within the heartbeat timeout and a retried failure keeps its real cause."""

from __future__ import annotations

from typing import Any

from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

from orchestrator.activities.errors import bounded_failure
from orchestrator.activities.heartbeat import heartbeating


class LivenessInterceptor(Interceptor):
    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Liveness(next)


class _Liveness(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        try:
            async with heartbeating():
                return await super().execute_activity(input)
        except Exception as error:
            bounded = bounded_failure(error)
            if bounded is error:
                raise
            raise bounded  # noqa: B904  # its cause is set: the cut copy of the original's

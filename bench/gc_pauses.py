"""The garbage collector's pauses in this process, by generation, through `gc.callbacks`.

Each collection stops every thread of the process (the GIL is held throughout): on a worker with
a large heap a full collection is a pause of every workflow activation, activity and request in
flight, long enough to matter to Temporal's deadlock detector (2 s per activation)."""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PauseFigures:
    full: int  # generation 2
    full_max_s: float
    total_s: float  # every generation


class GcPauses:
    """Records collections from `start()` until `stop()`; `take()` reads and resets."""

    def __init__(self) -> None:
        self._began: float | None = None
        self._pauses: list[tuple[int, float]] = []  # (generation, seconds)

    def start(self) -> None:
        gc.callbacks.append(self._callback)

    def stop(self) -> None:
        if self._callback in gc.callbacks:
            gc.callbacks.remove(self._callback)

    def take(self) -> PauseFigures:
        pauses, self._pauses = self._pauses, []
        full = [s for generation, s in pauses if generation == 2]
        return PauseFigures(
            full=len(full),
            full_max_s=round(max(full, default=0.0), 3),
            total_s=round(sum(s for _, s in pauses), 3),
        )

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
        elif self._began is not None:
            self._pauses.append((int(info["generation"]), time.perf_counter() - self._began))
            self._began = None

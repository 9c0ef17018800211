"""Failed sign-ins, counted per client address and name: after `limit` failures within
`window_s`, that pair is refused (429) until the oldest failure leaves the window, without a
password check. Per pair, not per name alone, so that nobody can lock an analyst out from
elsewhere by failing on purpose; a success clears the pair. Kept in memory, bounded."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

MAX_PAIRS = 10_000


class SignInThrottle:
    def __init__(
        self, limit: int = 5, window_s: float = 900.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._failures: dict[tuple[str, str], deque[float]] = {}

    def wait_s(self, client: str, user: str) -> float:
        """Seconds until this pair may try again (0: now)."""
        failures = self._recent(client, user)
        if failures is None or len(failures) < self.limit:
            return 0.0
        return max(0.0, failures[0] + self.window_s - self._clock())

    def failed(self, client: str, user: str) -> None:
        key = (client, user.strip().casefold())
        if key not in self._failures and len(self._failures) >= MAX_PAIRS:
            self._failures.pop(next(iter(self._failures)))  # the oldest pair
        self._failures.setdefault(key, deque(maxlen=self.limit)).append(self._clock())

    def succeeded(self, client: str, user: str) -> None:
        self._failures.pop((client, user.strip().casefold()), None)

    def _recent(self, client: str, user: str) -> deque[float] | None:
        key = (client, user.strip().casefold())
        failures = self._failures.get(key)
        if failures is None:
            return None
        now = self._clock()
        while failures and now - failures[0] > self.window_s:
            failures.popleft()
        if not failures:
            del self._failures[key]
            return None
        return failures

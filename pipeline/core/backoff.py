"""Capped exponential backoff with jitter, for reconnecting to live sources.

Jitter spreads the retries of many cameras that dropped at the same moment (a switch
rebooting), so they do not all hit the network again in lock-step.
"""

from __future__ import annotations

import random


class Backoff:
    """Delay before retry number `attempt` (1-based): initial * 2^(attempt-1), capped, +-jitter."""

    def __init__(self, initial_s: float, max_s: float, jitter: float, rng: random.Random | None = None) -> None:
        self.initial_s = initial_s
        self.max_s = max_s
        self.jitter = jitter
        self._rng = rng or random.Random()

    def delay(self, attempt: int) -> float:
        # min() before the power would overflow for attempts in the thousands (forever mode)
        base = self.initial_s * 2 ** min(attempt - 1, 62)
        capped = min(self.max_s, base)
        spread = capped * self.jitter
        return max(0.0, capped + self._rng.uniform(-spread, spread))

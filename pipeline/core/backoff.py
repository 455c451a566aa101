"""Capped exponential backoff with jitter: the one retry delay of every retry loop.

Live sources reconnecting, the Redis sink's publisher and the Redis consumer all wait
with it. Jitter spreads the retries of many clients that failed at the same moment (a
switch rebooting, Redis restarting), so they do not all hit the network again in
lock-step.
"""

from __future__ import annotations

import random


class Backoff:
    """Delay before retry number `attempt` (1-based): initial * 2^(attempt-1), capped, +-jitter.

    Callers that count attempts themselves use `delay(attempt)`; a plain retry loop uses
    `next_delay()` after each failure and `reset()` after a success.
    """

    def __init__(self, initial_s: float, max_s: float, jitter: float, rng: random.Random | None = None) -> None:
        self.initial_s = initial_s
        self.max_s = max_s
        self.jitter = jitter
        self.attempt = 0  # failures since the last reset, for next_delay()
        self._rng = rng or random.Random()

    def delay(self, attempt: int) -> float:
        # min() before the power would overflow for attempts in the thousands (forever mode)
        base = self.initial_s * 2 ** min(attempt - 1, 62)
        capped = min(self.max_s, base)
        spread = capped * self.jitter
        return max(0.0, capped + self._rng.uniform(-spread, spread))

    def next_delay(self) -> float:
        """Count one more failure and return the delay before retrying it."""
        self.attempt += 1
        return self.delay(self.attempt)

    def reset(self) -> None:
        """It worked: the next failure waits `initial_s` again."""
        self.attempt = 0

"""The property every fuzz test checks: an input either works, or fails with one of our
own errors (pipeline/core/errors.py) whose message is short and readable, in bounded time.

`outcome(call)` runs `call` in a worker thread so a hang fails the example instead of
the whole suite, and returns the value or the DetstreamError raised. Any other exception
type is re-raised, so hypothesis shrinks it and shows the input.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, settings

from pipeline.core.errors import DetstreamError

TIME_LIMIT_S = 10.0  # one example; the slowest target (COCO checks) takes milliseconds
MAX_MESSAGE = 4000  # "one clear line": a message this long is a dump, not a message

# modest counts: the fuzz tests together must stay under a minute on 2 busy cores
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                        HealthCheck.function_scoped_fixture])


def outcome(call: Callable[[], Any]) -> Any:
    """The value of `call()`, or the DetstreamError it raised; anything else fails."""
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["value"] = call()
        except BaseException as exc:  # noqa: BLE001 - judged below, in the test's thread
            result["error"] = exc

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(TIME_LIMIT_S)
    assert not worker.is_alive(), f"no answer within {TIME_LIMIT_S} s (a hang)"
    error = result.get("error")
    if error is None:
        return result["value"]
    if not isinstance(error, DetstreamError):
        raise error
    check_message(error)
    return error


def check_message(error: DetstreamError) -> None:
    message = str(error)
    assert message.strip(), f"{type(error).__name__} with an empty message"
    assert len(message) <= MAX_MESSAGE, f"{type(error).__name__} message of {len(message)} characters"
    assert "Traceback" not in message

"""The one publisher loop of the push sinks, with a scripted transport."""

from __future__ import annotations

import threading

from stages.sinks.outbox import Outbox
from stages.sinks.publisher import FINISH_ATTEMPTS, Progress, Publisher, SendFailed
from stages.sinks.spool import Spool
from support import wait_for


class Scripted:
    """Delivers records; `cut_after` N: the next send delivers N then fails once; `down`: fails."""

    retry_s = (0.001, 0.01)

    def __init__(self) -> None:
        self.sent: list[list[str]] = []
        self.delivered: list[str] = []
        self.cut_after: int | None = None
        self.down = False
        self.closed = threading.Event()

    def send(self, lines: list[str], replay: bool) -> Progress:
        self.sent.append(list(lines))
        if self.down:
            raise SendFailed("down")
        if self.cut_after is not None:
            n, self.cut_after = self.cut_after, None
            self.delivered += lines[:n]
            raise SendFailed("cut off", Progress(delivered=n))
        self.delivered += [line for line in lines if line != "junk"]
        return Progress(delivered=sum(line != "junk" for line in lines), unreadable=lines.count("junk"))

    def idle(self) -> bool:
        return False

    def close(self) -> None:
        self.closed.set()


def test_a_chunk_cut_off_mid_way_resumes_after_what_was_delivered(tmp_path):
    transport = Scripted()
    transport.cut_after = 2
    outbox = Outbox(Spool(tmp_path / "spool", 10**6), capacity=100)
    for i in range(5):
        outbox.offer(f"r{i}")
    outbox.offer("junk")
    publisher = Publisher(transport, outbox, batch=10, display="test")
    publisher.start()
    wait_for(lambda: outbox.wait_empty(0.01), "the outbox to drain", 10)
    publisher.stop()
    outbox.close()
    publisher.join(5)
    assert transport.sent == [["r0", "r1", "r2", "r3", "r4", "junk"], ["r2", "r3", "r4", "junk"]]
    assert transport.delivered == ["r0", "r1", "r2", "r3", "r4"]  # each once: no repeat
    assert (publisher.published, publisher.unreadable) == (5, 1)
    assert transport.closed.is_set()  # the publisher thread closes its transport last


def test_once_finishing_a_receiver_still_down_is_tried_a_few_times_then_left(tmp_path):
    transport = Scripted()
    transport.down = True
    outbox = Outbox(Spool(tmp_path / "spool", 10**6), capacity=100)
    outbox.offer("r0")
    publisher = Publisher(transport, outbox, batch=10, display="test")
    publisher.start()
    wait_for(lambda: publisher.down.is_set(), "the first failure", 10)
    tries = len(transport.sent)
    publisher.finish()
    assert publisher.gave_up.wait(10)
    publisher.stop()
    assert outbox.close() == 1  # left in the spool for the next run
    publisher.join(5)
    assert len(transport.sent) >= tries + FINISH_ATTEMPTS - 1

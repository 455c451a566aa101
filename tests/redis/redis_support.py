"""Redis test helpers: a real `redis-server` on a free port, and reading what the sink wrote.

The server is started from the `redis-server` on PATH; if it cannot be started the test
fails (never skips): the Redis tests are part of CI. It can be SIGKILLed and restarted
on the same port and data directory, as a crashed production server would be.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import redis

from pipeline.redis.consumer import Consumer, ConsumerSettings
from pipeline.core.messages import SCHEMA, event_id
from support import end_process, free_port

START_TIMEOUT_S = 15.0


class RedisServer:
    def __init__(
        self, directory: Path, password: str | None = None, persistent: bool = False, tls: Path | None = None
    ) -> None:
        # absolute: redis-server resolves its log file after changing into --dir
        self.directory = Path(directory).resolve()
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.password = password
        # appendfsync always: an acknowledged XADD survives a SIGKILL, like a durable
        # production setup; without it a killed server forgets everything
        self.persistent = persistent
        self.tls = tls  # folder from make_tls_files: serve TLS only, on self.port
        self.process: subprocess.Popen[bytes] | None = None
        self.log = self.directory / "redis.log"

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"{'rediss' if self.tls else 'redis'}://{auth}127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        tls = {"ssl": True, "ssl_ca_certs": str(self.tls / "ca.pem")} if self.tls else {}
        return redis.Redis(port=self.port, password=self.password, decode_responses=True, **tls)

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not on PATH: the Redis tests need it (apt-get install redis-server)")
        args = [
            binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory),
            "--save", "", "--appendonly", "yes" if self.persistent else "no", "--appendfsync", "always",
            "--logfile", str(self.log),
        ]
        if self.password:
            args += ["--requirepass", self.password]
        if self.tls:
            args[2] = "0"  # no plain-text port
            args += ["--tls-port", str(self.port), "--tls-cert-file", str(self.tls / "server.pem"),
                     "--tls-key-file", str(self.tls / "server.key"), "--tls-ca-cert-file", str(self.tls / "ca.pem"),
                     "--tls-auth-clients", "no"]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                self.client().ping()
                return self
            except redis.ConnectionError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    log = self.log.read_text()[-2000:] if self.log.exists() else ""
                    self.stop()
                    raise RuntimeError(f"redis-server did not start on port {self.port}:\n{log}") from None
                time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: no shutdown, no save; the port is free again once it returns."""
        end_process(self.process, kill=True)
        self.process = None

    def stop(self) -> None:
        end_process(self.process)
        self.process = None


def consume_all(client: redis.Redis, stream: str = "detstream:{source}", group: str = "check", idle_s: float = 1.0) -> list[dict]:
    """Every message of `stream` through a fresh consumer group, in delivery order."""
    messages: list[dict] = []
    settings = ConsumerSettings(group=group, name="checker", block_ms=100)
    Consumer(client, stream, settings).run(messages.append, idle_exit_s=idle_s)
    return messages


def xadd_messages(client: redis.Redis, source: str, count: int, stream: str | None = None) -> list[str]:
    """`count` minimal schema-v1 messages of `source`, as the sink writes them; their event ids."""
    ids = []
    for seq in range(count):
        message = {"schema": SCHEMA, "event_id": event_id(source, seq), "source": source, "seq": seq,
                   "pts": seq / 25, "capture_ts": 0.0, "width": 64, "height": 64, "model": "test",
                   "detections": [], "latency_ms": {}}
        fields = {"event_id": message["event_id"], "source": source, "seq": seq, "message": json.dumps(message)}
        client.xadd(stream or f"detstream:{source}", fields)
        ids.append(message["event_id"])
    return ids

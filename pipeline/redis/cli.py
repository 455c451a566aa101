"""`detstream consume --redis URL --group G --consumer C [--out JSONL] [--handler module:function]`.

Reads the streams the Redis sink writes, through a consumer group (see pipeline/consumer.py
for the delivery rules), and writes each message as one JSON line and/or passes it to a
user function. Without --out and --handler, messages go to stdout.

`python -m pipeline.redis.cli ARGS` is the same command without the rest of the CLI.
Neither imports torch: `detstream` loads a command's heavy modules only when it runs.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
import threading
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Sequence, TextIO

from pipeline.redis.consumer import Consumer, ConsumerSettings, Handler
from pipeline.core.errors import ConfigError, DetstreamError
from pipeline.core.redis_url import DEFAULT_STREAM, check_server, parse_redis_url
from pipeline.core.signals import Signals
from pipeline.run.supervisor import exit_code

log = logging.getLogger("detstream")
CONSUMER_OPTIONS = {"stream": f"stream key; {{source}} matches every source (default {DEFAULT_STREAM})"}


def load_handler(spec: str) -> Handler:
    """The callable named by `module:function`: the module is found in the current
    directory first, then on the Python path (as `python -m` finds it)."""
    module_name, sep, name = spec.partition(":")
    if not sep or not module_name or not name:
        raise ConfigError(f"--handler {spec!r}: expected module:function")
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"--handler {spec!r}: cannot import {module_name}: {exc}") from exc
    handler = getattr(module, name, None)
    if not callable(handler):
        raise ConfigError(f"--handler {spec!r}: {module_name} has no function {name}")
    return handler


def _jsonl_writer(file: TextIO) -> Handler:
    def write(message: dict[str, Any]) -> None:
        file.write(json.dumps(message, separators=(",", ":")) + "\n")
        file.flush()

    return write


def cmd_consume(args: argparse.Namespace) -> int:
    user = load_handler(args.handler) if args.handler else None  # a bad handler fails before connecting
    target = parse_redis_url(args.redis, CONSUMER_OPTIONS)
    stream = target.key_template("stream", DEFAULT_STREAM) or DEFAULT_STREAM
    client = target.client()
    unreachable = check_server(client, target)
    if unreachable:
        raise target.error(f"cannot connect: {unreachable}")
    settings = ConsumerSettings(
        group=args.group,
        name=args.consumer,
        block_ms=args.block_ms,
        count=args.count,
        claim_idle_ms=args.claim_idle_ms,
        max_deliveries=args.max_deliveries,
        start=args.start,
    )
    stop = threading.Event()
    # a signal lets the batch in hand finish (handled entries get acknowledged), then exit
    signals = Signals(stop)

    with ExitStack() as stack:
        handlers: list[Handler] = [user] if user else []
        if args.out == "-" or (args.out is None and user is None):
            handlers.append(_jsonl_writer(sys.stdout))
        elif args.out is not None:
            try:
                Path(args.out).parent.mkdir(parents=True, exist_ok=True)
                out = stack.enter_context(open(args.out, "a", encoding="utf-8"))
            except OSError as exc:
                raise ConfigError(f"--out {args.out}: {exc.strerror}") from exc
            handlers.append(_jsonl_writer(out))

        def handle(message: dict[str, Any]) -> None:
            for handler in handlers:
                handler(message)

        stack.enter_context(signals.installed())
        log.info("consuming %s from %s as %s/%s", stream, target.display, args.group, args.consumer)
        stats = Consumer(client, stream, settings).run(handle, stop, idle_exit_s=args.until_idle)
    log.info("consumer %s: %s", args.consumer, stats.line())
    return exit_code(False, signals.received)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("consume", help="read detections from Redis Streams with a consumer group")
    p.add_argument("--redis", required=True, metavar="URL", help=f"redis://[user:password@]host:port/db[?stream={DEFAULT_STREAM}]")
    p.add_argument("--group", required=True, metavar="G", help="consumer group (created if missing)")
    p.add_argument("--consumer", required=True, metavar="C", help="this consumer's name, stable across restarts")
    p.add_argument("--out", metavar="JSONL", help="append messages to this file (- for stdout; the default without --handler)")
    p.add_argument("--handler", metavar="MODULE:FUNCTION", help="call FUNCTION(message) for each message; raise to fail it "
                   "(MODULE: in the current directory or on the Python path)")
    p.add_argument("--claim-idle-ms", type=int, default=60_000, metavar="MS", help="take over other consumers' entries idle this long (default 60000)")
    p.add_argument("--max-deliveries", type=int, default=5, metavar="N", help="after N failed deliveries an entry goes to STREAM:dead (default 5)")
    p.add_argument("--block-ms", type=int, default=1000, metavar="MS", help="longest wait for new entries per read (default 1000)")
    p.add_argument("--count", type=int, default=100, metavar="N", help="entries per read (default 100)")
    p.add_argument("--start", choices=["0", "$"], default="0", help="where a new group starts: 0 all retained entries (default), $ new ones only")
    p.add_argument("--until-idle", type=float, metavar="S", help="exit once nothing arrived for S seconds (default: run until Ctrl-C)")
    p.set_defaults(func=cmd_consume)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.redis.cli")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["consume", *(sys.argv[1:] if argv is None else argv)])
    logging.basicConfig(level=logging.INFO, format="detstream %(levelname)s: %(message)s", stream=sys.stderr)
    try:
        return cmd_consume(args)
    except DetstreamError as exc:
        log.error("%s", exc)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""The rich consoles the commands print to: a terminal's own width, else no wrapping.

Rich wraps at 80 columns when it writes to a file or a pipe; a log or a CI page would get
every long line and table squeezed. Not a terminal: a wide fixed width and no soft wrapping.
"""

from __future__ import annotations

from rich.console import Console

PIPE_WIDTH = 200  # columns of tables written to a file or a pipe


def make_console(stderr: bool = False) -> Console:
    """A console on stdout (or stderr): the terminal's width, or `PIPE_WIDTH` and no wrapping."""
    console = Console(stderr=stderr)
    if console.is_terminal:
        return console
    return Console(stderr=stderr, width=PIPE_WIDTH, soft_wrap=True)

"""Ports for the brokers the tests start: the one asked for, else the first free block from a default.

A test broker has fixed default ports so that runs can find and reuse it. When another program already holds
one of them (a server left running by something else on the machine), a run must not fail for that: without
the environment variable the next free block is taken instead. A port set in the environment is used as is.
"""

from __future__ import annotations

import os
import socket

_TRIES = 40


def in_use(port: int) -> bool:
    """Whether something listens on 127.0.0.1:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def port_block(variable: str, default: int, width: int) -> int:
    """The first of ``width`` consecutive ports: ``$variable`` if set, else the first free block."""
    configured = os.environ.get(variable)
    if configured:
        return int(configured)
    for start in range(default, default + _TRIES * width, width):
        if not any(in_use(port) for port in range(start, start + width)):
            return start
    return default  # every block taken: the broker's own start then names the port that is in use

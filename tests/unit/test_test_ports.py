"""Test brokers' ports: a port another program holds is passed over; one set in the environment is kept."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from tests.ports import in_use, port_block


@pytest.fixture
def held_port() -> Iterator[int]:
    """A port on 127.0.0.1 that another program (here: a listening socket) holds."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def test_a_block_with_a_held_port_is_passed_over_for_the_next_free_one(held_port: int) -> None:
    start = port_block("SAMBUS_TEST_NO_SUCH_PORT_VARIABLE", held_port - 1, 2)

    assert start >= held_port + 1
    assert not any(in_use(port) for port in range(start, start + 2))


def test_a_port_set_in_the_environment_is_used_even_when_held(
    held_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAMBUS_TEST_SOME_PORT", str(held_port))

    assert port_block("SAMBUS_TEST_SOME_PORT", 1, 2) == held_port

"""``sambus run`` as one process per group of stages, so the stages use every core.

Each group (:data:`sambus.router.service.bootstrap.STAGE_GROUPS`) runs in a process of its own, with its own
event loop, database connections and Kafka clients: the delivery stage's consent decisions no longer wait
behind intake's translation or the process tracker's writes, and none of them blocks another's Kafka polling.
The parent creates the topics once, starts the groups, and stops them all when it is told to stop or when one
of them ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Sequence
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess

from sambus.contracts.errors import SambusError
from sambus.router.cli.common import configured_broker
from sambus.router.ops.logs import configure_logging
from sambus.router.service.bootstrap import STAGE_GROUPS, bootstrap
from sambus.router.settings import Settings

logger = logging.getLogger(__name__)

STOP_GRACE_S = 30.0
"""How long a group has to finish its batch and leave its consumer group before it is killed."""


PR_SET_PDEATHSIG = 1
"""prctl(2): the signal this process gets when its parent dies (Linux)."""


def _end_with_parent(parent: int) -> None:
    """Have this process told (SIGTERM) when ``parent``, the ``sambus run`` that started it, dies.

    A SIGKILLed or OOM-killed ``sambus run`` had left its stage groups running without a supervisor, and the
    ``sambus run`` started in its place then ran beside them. On Linux the kernel signals the group; elsewhere
    :func:`_watch_parent` sees the parent gone within a second.
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # it died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)


async def _watch_parent(parent: int, stop: asyncio.Event) -> None:
    while not stop.is_set():
        if os.getppid() != parent:
            logger.error("sambus run (pid %d) is gone; its stage groups stop", parent)
            stop.set()
        await asyncio.sleep(1.0)


def run_group(group: str, log_format: str, parent: int) -> None:
    """A group's process: wire sambus from the same settings and run the group's stages until signalled.

    It also stops when ``parent`` (the ``sambus run`` that started it) dies, however it died.
    """
    configure_logging(log_format)
    try:
        settings = Settings()
        sambus = bootstrap(settings, bootstrap_servers=configured_broker(settings))
    except SambusError as exc:
        logger.error("stage group %s cannot start: %s", group, exc)  # noqa: TRY400 - the message says why
        raise SystemExit(1) from exc

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        _end_with_parent(parent)
        watching = asyncio.create_task(_watch_parent(parent, stop))
        try:
            await sambus.run(stop, only=STAGE_GROUPS[group], create_topics=False)
        finally:
            watching.cancel()

    try:
        asyncio.run(serve())
    except SambusError as exc:
        logger.error("stage group %s stopped: %s", group, exc)  # noqa: TRY400 - the message says why
        raise SystemExit(1) from exc


def start_groups(log_format: str, groups: Sequence[str] = tuple(STAGE_GROUPS)) -> list[BaseProcess]:
    """Start one process per group (spawned: no event loop or connection of this process is shared)."""
    context = multiprocessing.get_context("spawn")
    started: list[BaseProcess] = []
    for group in groups:
        process = context.Process(
            target=run_group, args=(group, log_format, os.getpid()), name=f"sambus-{group}"
        )
        process.start()
        started.append(process)
    return started


def stop_groups(processes: Sequence[BaseProcess], *, grace_s: float = STOP_GRACE_S) -> None:
    """Ask every group to stop (SIGTERM), wait up to ``grace_s`` for them, then kill what is left."""
    for process in processes:
        if process.is_alive() and process.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
    deadline = time.monotonic() + grace_s
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            logger.warning("stage group %s did not stop in %.0f s; killing it", process.name, grace_s)
            process.kill()
            process.join()


def _any_ended(sentinels: list[int], timeout_s: float) -> bool:
    return bool(wait(sentinels, timeout_s))


async def supervise(processes: Sequence[BaseProcess], stop: asyncio.Event) -> int:
    """Wait until ``stop`` is set or a group ends, then stop them all; returns 0, or 1 if a group failed."""
    sentinels = [process.sentinel for process in processes]
    ended = False
    while not stop.is_set() and not ended:
        ended = await asyncio.to_thread(_any_ended, sentinels, 0.5)
    unexpected = ended and not stop.is_set()
    if unexpected:
        gone = [process.name for process in processes if not process.is_alive()]
        logger.error("stage group(s) %s ended; stopping the others", ", ".join(gone))
    stop.set()
    await asyncio.to_thread(stop_groups, processes)
    failed = any(process.exitcode is not None and process.exitcode > 0 for process in processes)
    return 1 if unexpected or failed else 0

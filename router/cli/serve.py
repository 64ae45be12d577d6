"""``sambus serve``: the HTTP service on its own, and ``sambus serve token`` to mint an access token."""

from __future__ import annotations

import asyncio
import signal
from typing import Annotated

import typer
from rich.console import Console

from sambus.contracts.errors import SambusError
from sambus.router.cli.common import broker_address
from sambus.router.ops.logs import configure_logging
from sambus.router.service.bootstrap import Sambus, bootstrap
from sambus.router.settings import Settings
from sambus.router.web.auth import Role, mint_token

serve_app = typer.Typer(
    help="The HTTP service: /health, /ready, /metrics, the operations and compliance pages."
)
console = Console()
errors = Console(stderr=True)


async def run_with_web(sambus: Sambus, stop: asyncio.Event, *, only: str | None = None) -> None:
    """Run the stages and the HTTP service side by side until ``stop`` is set."""
    from sambus.router.web.wiring import create_app, serve, web_services  # noqa: PLC0415 - FastAPI only when serving

    app = create_app(web_services(sambus))
    settings = sambus.settings
    async with asyncio.TaskGroup() as group:
        group.create_task(sambus.run(stop, only=only), name="stages")
        group.create_task(serve(app, host=settings.web_host, port=settings.web_port, stop=stop), name="web")


@serve_app.callback(invoke_without_command=True)
def serve_command(
    ctx: typer.Context,
    log_format: Annotated[str, typer.Option("--log-format", help="Log as text or json.")] = "text",
) -> None:
    """Serve the HTTP service on SAMBUS_WEB_HOST:SAMBUS_WEB_PORT until interrupted.

    It starts while the broker is away: ``/ready`` answers 503 naming it until it answers.
    """
    if ctx.invoked_subcommand is not None:
        return
    from sambus.router.web.wiring import create_app, serve, web_services  # noqa: PLC0415 - FastAPI only when serving

    try:
        settings = Settings()
        app = create_app(web_services(bootstrap(settings, bootstrap_servers=broker_address(settings))))
        configure_logging(log_format)
    except (SambusError, ValueError) as exc:
        errors.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(code=2) from exc

    async def until_signal() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await serve(app, host=settings.web_host, port=settings.web_port, stop=stop)

    asyncio.run(until_signal())


@serve_app.command("token")
def token_command(
    name: Annotated[str, typer.Option(help="Who holds the token (shown in the audit log).")],
    role: Annotated[Role, typer.Option(help="operator, compliance or admin.")],
) -> None:
    """Mint an access token: give the token to its holder, add the entry to SAMBUS_WEB_TOKENS."""
    if not name or any(c in name for c in ":,"):
        errors.print("[bold red]error:[/] the name must be non-empty and contain no ':' or ','")
        raise typer.Exit(code=2)
    token, digest = mint_token()
    console.print(
        f"token (give it to {name}; it is not stored anywhere): {token}", highlight=False, soft_wrap=True
    )
    console.print(f"SAMBUS_WEB_TOKENS entry: {name}:{role}:{digest}", highlight=False, soft_wrap=True)

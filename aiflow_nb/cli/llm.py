"""``aiflow fake-llm``: the local OpenAI-compatible server, in the foreground."""

from __future__ import annotations

import click

from .. import defaults

__all__ = ["fake_llm", "register"]


@click.command("fake-llm")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option(
    "--port", default=defaults.FAKE_LLM_PORT, show_default=True, type=click.IntRange(0, 65535)
)
@click.option("--latency", default=0.0, show_default=True, help="Seconds before the first token.")
@click.option(
    "--tokens-per-s",
    default=defaults.FAKE_LLM_TOKENS_PER_S,
    show_default=True,
    help="Generation speed; 0 answers at once.",
)
@click.option(
    "--error-rate",
    default=0.0,
    show_default=True,
    help="Fraction of requests answered with --error-status.",
)
@click.option("--error-status", default=500, show_default=True, help="Status of injected errors.")
@click.option(
    "--rate-limit-rate",
    default=0.0,
    show_default=True,
    help="Fraction of requests answered 429 with Retry-After.",
)
@click.option(
    "--retry-after", default=1.0, show_default=True, help="Seconds the injected 429s ask to wait."
)
@click.option("--rpm", default=None, type=float, help="Requests per minute before 429s.")
@click.option("--seed", default=0, show_default=True, help="Seed of the injected errors.")
def fake_llm(
    host: str,
    port: int,
    latency: float,
    tokens_per_s: float,
    error_rate: float,
    error_status: int,
    rate_limit_rate: float,
    retry_after: float,
    rpm: float | None,
    seed: int,
) -> None:
    """Serve a local OpenAI-compatible API (chat, responses, embeddings) for demos and tests.

    Knobs change at runtime with POST /_aiflow/knobs; GET /_aiflow/requests is the log.
    """
    import uvicorn

    from ..llm.fake_server import FakeLLM, Knobs, create_app

    try:
        knobs = Knobs(
            latency=latency,
            tokens_per_s=tokens_per_s,
            error_rate=error_rate,
            error_status=error_status,
            rate_limit_rate=rate_limit_rate,
            retry_after=retry_after,
            rpm=rpm,
            seed=seed,
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    click.echo(
        f"fake LLM on http://{host}:{port}/v1 — for the examples and the SDK:\n"
        f"  export OPENAI_BASE_URL=http://{host}:{port}/v1 OPENAI_API_KEY=unused"
    )
    uvicorn.run(create_app(FakeLLM(knobs)), host=host, port=port, log_level="warning")


def register(group: click.Group) -> None:
    group.add_command(fake_llm)

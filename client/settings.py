"""The client's settings: one dataclass, filled from flags, then the environment, then defaults."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from client.errors import ClientError, ExitCode

DEFAULT_URL = "http://127.0.0.1:8000/mcp"
#: The current Sonnet in the anthropic SDK's `Model` literal (2.12), and not in its deprecated list.
DEFAULT_MODEL = "claude-sonnet-5-5"
DEFAULT_MAX_TOKENS = 4096
DEFAULT_MAX_TURNS = 10
#: The SDK's own default: retries on 408/409/429/5xx and on network errors, honouring retry-after.
DEFAULT_MAX_RETRIES = 2

PROG = "toolq-client"


@dataclass(frozen=True)
class ClientSettings:
    prompt: str
    api_key: str = field(repr=False)
    url: str = DEFAULT_URL
    token: str | None = field(default=None, repr=False)
    model: str = DEFAULT_MODEL
    #: None: the SDK's default, https://api.anthropic.com.
    anthropic_base_url: str | None = None
    max_tokens: int = DEFAULT_MAX_TOKENS
    max_turns: int = DEFAULT_MAX_TURNS
    max_retries: int = DEFAULT_MAX_RETRIES
    stream: bool = False
    json_output: bool = False


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "Ask Claude something; Claude calls the tools a toolq facade serves (discovered over MCP), "
            "the facade runs them on its workers, and Claude answers."
        ),
        epilog=(
            "Needs ANTHROPIC_API_KEY. Exit codes: 0 answered, 2 configuration, 3 facade unreachable, "
            "4 facade refused the token, 5 Anthropic API error, 6 max turns reached, "
            "7 Claude stopped early (max tokens, refusal)."
        ),
    )
    parser.add_argument("prompt", nargs="+", help='what to ask, e.g. "Weather in Delhi, and 15 + 27?"')
    parser.add_argument(
        "--url", metavar="URL", help=f"the facade's MCP endpoint (env TOOLQ_URL, default {DEFAULT_URL})"
    )
    parser.add_argument(
        "--token",
        metavar="TOKEN",
        help="bearer token for the facade (env TOOLQ_TOKEN; prefer the variable: flags show in ps)",
    )
    parser.add_argument(
        "--model", metavar="ID", help=f"Claude model id (env ANTHROPIC_MODEL, default {DEFAULT_MODEL})"
    )
    parser.add_argument(
        "--max-tokens",
        type=int,
        metavar="N",
        help=f"tokens per Claude reply (env TOOLQ_CLIENT_MAX_TOKENS, default {DEFAULT_MAX_TOKENS})",
    )
    parser.add_argument(
        "--max-turns",
        type=int,
        metavar="N",
        help=f"Claude replies per run (env TOOLQ_CLIENT_MAX_TURNS, default {DEFAULT_MAX_TURNS})",
    )
    parser.add_argument(
        "--max-retries",
        type=int,
        metavar="N",
        help=(
            "retries of a failed Anthropic request: 429, 5xx, overloaded, network "
            f"(env TOOLQ_CLIENT_MAX_RETRIES, default {DEFAULT_MAX_RETRIES})"
        ),
    )
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--stream", action="store_true", help="print Claude's text as it arrives")
    output.add_argument(
        "--json", action="store_true", help="print a machine-readable transcript (JSON) instead of text"
    )
    return parser


def parse_settings(argv: Sequence[str] | None, environ: Mapping[str, str]) -> ClientSettings:
    """Flags first, then the environment. Raises ClientError (CONFIG) for what argparse can't see."""
    return settings_from(build_parser().parse_args(argv), environ)


def settings_from(args: argparse.Namespace, environ: Mapping[str, str]) -> ClientSettings:
    api_key = environ.get("ANTHROPIC_API_KEY", "").strip()
    if not api_key:
        raise ClientError(
            "no Anthropic API key: set ANTHROPIC_API_KEY (export ANTHROPIC_API_KEY=sk-ant-...; "
            "keys are made in the Claude Console)",
            ExitCode.CONFIG_ERROR,
        )
    url = args.url or environ.get("TOOLQ_URL") or DEFAULT_URL
    if not url.startswith(("http://", "https://")):
        source = "--url" if args.url else "TOOLQ_URL"
        raise ClientError(
            f"{source} must be an http:// or https:// URL such as {DEFAULT_URL}, got {url!r}",
            ExitCode.CONFIG_ERROR,
        )
    prompt = " ".join(args.prompt).strip()
    if not prompt:
        raise ClientError("the prompt is empty: say what to ask Claude", ExitCode.CONFIG_ERROR)
    return ClientSettings(
        prompt=prompt,
        api_key=api_key,
        url=url,
        token=args.token or environ.get("TOOLQ_TOKEN") or None,
        model=args.model or environ.get("ANTHROPIC_MODEL") or DEFAULT_MODEL,
        anthropic_base_url=environ.get("ANTHROPIC_BASE_URL") or None,
        max_tokens=_count(
            args.max_tokens, "--max-tokens", environ, "TOOLQ_CLIENT_MAX_TOKENS", default=DEFAULT_MAX_TOKENS
        ),
        max_turns=_count(
            args.max_turns, "--max-turns", environ, "TOOLQ_CLIENT_MAX_TURNS", default=DEFAULT_MAX_TURNS
        ),
        max_retries=_count(
            args.max_retries,
            "--max-retries",
            environ,
            "TOOLQ_CLIENT_MAX_RETRIES",
            default=DEFAULT_MAX_RETRIES,
            minimum=0,
        ),
        stream=bool(args.stream),
        json_output=bool(args.json),
    )


def _count(
    flag_value: int | None,
    flag: str,
    environ: Mapping[str, str],
    variable: str,
    *,
    default: int,
    minimum: int = 1,
) -> int:
    """An integer setting from its flag, else its variable, else the default; named when invalid."""
    if flag_value is not None:
        value, source = flag_value, flag
    elif environ.get(variable, "").strip():
        raw = environ[variable].strip()
        try:
            value, source = int(raw), variable
        except ValueError:
            raise ClientError(
                f"{variable} must be a whole number, got {raw!r}", ExitCode.CONFIG_ERROR
            ) from None
    else:
        return default
    if value < minimum:
        raise ClientError(f"{source} must be at least {minimum}, got {value}", ExitCode.CONFIG_ERROR)
    return value

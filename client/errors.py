"""Exit codes, and the one exception type that carries a message a user can act on."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """What `toolq-client` exits with. 1 is left to Python itself: an unexpected crash (a bug)."""

    OK = 0
    #: Bad flags or environment, e.g. no ANTHROPIC_API_KEY (argparse's usage errors are 2 as well).
    CONFIG_ERROR = 2
    #: The facade could not be reached, or did not answer as an MCP server.
    FACADE_UNREACHABLE = 3
    #: The facade refused us: HTTP 401 (token missing or wrong) or 403.
    FACADE_AUTH_REJECTED = 4
    #: The Messages API failed: bad key, rate limit or overload after the retries, network, ...
    ANTHROPIC_ERROR = 5
    #: Claude still wanted tools when the last allowed turn ended.
    MAX_TURNS = 6
    #: Claude stopped without finishing: max_tokens, refusal, context window exceeded.
    INCOMPLETE = 7
    #: Ctrl-C.
    INTERRUPTED = 130


class ClientError(Exception):
    """A failure explained for the user: printed as-is (no traceback), then exit with `exit_code`."""

    def __init__(self, message: str, exit_code: ExitCode) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


def leaf_exceptions(error: BaseException) -> list[BaseException]:
    """The exceptions inside (nested) exception groups, in order; `[error]` for a plain one.

    The `mcp` client runs on anyio task groups, so a refused connection or an HTTP error
    reaches us wrapped in one or two ExceptionGroups.
    """
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in leaf_exceptions(inner)]
    return [error]

"""`python -m client "Tell me the weather of Delhi and add 15 and 27"`: Claude answers, calling
whatever tools the toolq facade serves; the facade runs each call on its workers.

    main(argv)       the command line: settings, run, exit code; never a traceback for a
                     failure it can explain
    run(settings)    the same, for a caller that has its settings (tests call it in-process)
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Sequence
from typing import TextIO

import anthropic

from client.agent_loop import AgentLoop, LoopObserver
from client.claude_api import Claude, explain_anthropic_error, make_anthropic
from client.errors import ClientError, ExitCode, leaf_exceptions
from client.mcp_tools import FacadeConnection
from client.output import ConsolePrinter, QuietObserver, print_error, print_note, print_transcript
from client.settings import ClientSettings, build_parser, settings_from
from client.transcript import Outcome, Transcript


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = settings_from(args, os.environ)
    except ClientError as failure:
        if args.json:
            status = {"status": failure.exit_code.name.lower(), "exit_code": int(failure.exit_code)}
            print(json.dumps({**status, "message": failure.message}))
        print_error(failure.message, sys.stderr)
        return failure.exit_code
    try:
        return asyncio.run(run(settings))
    except KeyboardInterrupt:
        print_error("interrupted", sys.stderr)
        return ExitCode.INTERRUPTED


async def run(settings: ClientSettings, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Discover the facade's tools, run the conversation, print it; the exit code."""
    out = sys.stdout if out is None else out
    errors = sys.stderr if err is None else err
    transcript = Transcript(prompt=settings.prompt, model=settings.model, url=settings.url)
    printer = None if settings.json_output else ConsolePrinter(out)
    observer: LoopObserver = printer or QuietObserver()
    facade = FacadeConnection(settings.url, settings.token)
    try:
        async with (
            make_anthropic(settings, lambda note: print_note(note, errors)) as client,
            facade.open() as tools,
        ):
            transcript.tools = tools.names
            if not tools.names:
                print_note(
                    f"warning: the facade at {settings.url} serves no tools right now "
                    "(is a worker running?); Claude answers without them",
                    errors,
                )
            claude = Claude(
                client,
                model=settings.model,
                max_tokens=settings.max_tokens,
                tools=tools.params(),
                stream=settings.stream,
            )
            loop = AgentLoop(
                claude,
                tools,
                max_turns=settings.max_turns,
                max_tokens=settings.max_tokens,
                observer=observer,
            )
            await loop.run(transcript)
    except Exception as error:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            # Ctrl-C cancelled us and the mcp client's task groups turned that into errors of
            # their own: stay cancelled, so that asyncio.run raises KeyboardInterrupt.
            raise asyncio.CancelledError from error
        failure = _explain(error, facade, settings)
        if failure is None:
            raise
        transcript.outcome = Outcome(failure.exit_code, failure.message)
    if printer is not None:
        printer.finish()
    outcome = transcript.outcome or Outcome(ExitCode.OK)
    if settings.json_output:
        print_transcript(transcript, out)
    if outcome.message:
        (print_note if outcome.exit_code == ExitCode.OK else print_error)(outcome.message, errors)
    return outcome.exit_code


def _explain(error: Exception, facade: FacadeConnection, settings: ClientSettings) -> ClientError | None:
    """The failure in words, or None for one nobody foresaw (a bug: let its traceback show)."""
    leaves = leaf_exceptions(error)
    for leaf in leaves:
        if isinstance(leaf, ClientError):
            return leaf
    for leaf in leaves:
        if isinstance(leaf, anthropic.AnthropicError):
            return explain_anthropic_error(leaf, settings)
    return facade.explain(leaves)

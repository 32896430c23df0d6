"""`@tool`: a typed Python function becomes an MCP tool.

The name, description, input schema (from the parameters) and output schema (from the return
annotation) are derived from the function, never written twice. A tool may take a
`ToolContext` parameter (any name) to report progress and write log messages; it is not part
of the input schema.

What a tool returns decides what the caller gets:
- a pydantic model or TypedDict: data (structuredContent, checked against the output schema
  derived from it) and the same as JSON text;
- `str`, a block from workers.content (Image, Audio, ResourceLink, EmbeddedResource, Text) or a
  list of them: content blocks, and no output schema;
- `ToolResult[Model]`: content blocks and data beside them.
"""

from __future__ import annotations

import asyncio
import collections.abc
import inspect
import re
import types
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Union, get_args, get_origin, get_type_hints, overload

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError, WithJsonSchema, create_model

from workers.content import ContentBlock, ToolResult, content_blocks
from workers.contract import LOG_LEVELS, ToolOutput

TOOL_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
TaskMode = Literal["optional", "always", "never"]
#: A tool's task mode as MCP's `execution.taskSupport` (2025-11-25) says it.
TASK_SUPPORT: dict[str, str] = {"optional": "optional", "always": "required", "never": "forbidden"}
#: The dialect of every schema toolq derives (MCP's default, stated for clients that ask).
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
#: How a tool's return value becomes its result (see the module docstring).
ResultKind = Literal["data", "content", "mixed"]

#: A JSON number that stays an int when given an int (15 + 27 is 42, not 42.0).
Number = Annotated[int | float, WithJsonSchema({"type": "number"})]


class ToolError(Exception):
    """Raise from a tool to fail the call with a message the model can act on."""


class ToolUnavailable(ToolError):
    """Raise from a tool that cannot serve the call right now (a service it needs is down): the
    call fails as unavailable (HTTP 503 in the seed format; an MCP task ends `failed`, not
    `completed`), rather than as the tool's own error."""


ProgressReporter = Callable[[float, float | None, str | None], Awaitable[None]]
#: Runs a plain-`def` tool's function with its validated arguments, off the event loop.
SyncRunner = Callable[["ToolDefinition", dict[str, Any]], Awaitable[Any]]
LogWriter = Callable[[str, Any, str | None], Awaitable[None]]


async def _discard(*_args: Any) -> None:
    return None


class ToolContext:
    """Handed to tools that ask for it: progress and log messages for the call in hand.

    Both reach the caller only if it asked for them (a progress token; a log level at or below
    the message's); otherwise they cost nothing.
    """

    def __init__(self, report: ProgressReporter = _discard, log: LogWriter = _discard):
        self._report = report
        self._log = log

    async def report_progress(
        self, progress: float, total: float | None = None, message: str | None = None
    ) -> None:
        await self._report(progress, total, message)

    async def log(self, level: str, data: Any, *, logger: str | None = None) -> None:
        """Send a log message (`data`: any JSON value, usually a string) at one of LOG_LEVELS."""
        if level not in LOG_LEVELS:
            raise ValueError(f"log level must be one of {', '.join(LOG_LEVELS)}, not {level!r}")
        await self._log(level, data, logger)

    async def debug(self, data: Any, *, logger: str | None = None) -> None:
        await self.log("debug", data, logger=logger)

    async def info(self, data: Any, *, logger: str | None = None) -> None:
        await self.log("info", data, logger=logger)

    async def warning(self, data: Any, *, logger: str | None = None) -> None:
        await self.log("warning", data, logger=logger)

    async def error(self, data: Any, *, logger: str | None = None) -> None:
        await self.log("error", data, logger=logger)


@dataclass(frozen=True)
class ToolDefinition:
    name: str
    description: str
    fn: Callable[..., Any]
    arguments_model: type[BaseModel]
    #: Checks and serializes the data part of a result (None: the tool returns no data).
    result_adapter: TypeAdapter[Any] | None
    result_kind: ResultKind
    input_schema: dict[str, Any]
    output_schema: dict[str, Any] | None
    timeout: float
    idempotent: bool
    title: str | None = None
    annotations: dict[str, Any] = field(default_factory=dict)
    context_parameter: str | None = None
    #: Client capabilities a call needs (e.g. {"sampling": {}}): a client that did not declare
    #: them is refused before the call reaches a worker.
    client_capabilities: dict[str, Any] = field(default_factory=dict)
    #: Whether a call may become an MCP task: "optional" (when it runs long, for clients that
    #: take tasks), "always", or "never".
    task: TaskMode = "optional"

    def spec(self) -> dict[str, Any]:
        """The MCP `Tool` object plus toolq's own routing fields (under `x-toolq`)."""
        spec: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "inputSchema": self.input_schema,
        }
        if self.output_schema is not None:
            spec["outputSchema"] = self.output_schema
        if self.title:
            spec["title"] = self.title
        annotations = {"idempotentHint": self.idempotent, **self.annotations}
        if self.title and "title" not in annotations:
            annotations["title"] = self.title
        spec["annotations"] = annotations
        spec["execution"] = {"taskSupport": TASK_SUPPORT[self.task]}
        spec["x-toolq"] = {"timeout": self.timeout, "idempotent": self.idempotent, "task": self.task}
        if self.client_capabilities:
            spec["x-toolq"]["client_capabilities"] = self.client_capabilities
        return spec

    def validate_arguments(self, arguments: dict[str, Any]) -> BaseModel:
        return self.arguments_model.model_validate(arguments)

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.fn)

    async def invoke(
        self,
        arguments: dict[str, Any],
        context: ToolContext | None = None,
        *,
        run_sync: SyncRunner | None = None,
    ) -> ToolOutput:
        """Validate, run and serialize; raises ValidationError, ToolError or whatever the tool raises.

        A plain function may block (CPU or sync I/O), so it never runs on the event loop:
        `run_sync` runs it (the worker's pool of child processes, where a timeout can end it);
        without one, a thread.
        """
        validated = self.validate_arguments(arguments)
        kwargs = {name: getattr(validated, name) for name in type(validated).model_fields}
        if self.context_parameter:
            kwargs[self.context_parameter] = context or ToolContext()
        if self.is_async:
            result = await self.fn(**kwargs)
        elif run_sync is not None:
            result = await run_sync(self, kwargs)
        else:
            result = await asyncio.to_thread(self.fn, **kwargs)
        return self.render(result)

    def render(self, result: Any) -> ToolOutput:
        """A returned value as data and/or content blocks; ToolError if it is not what was declared."""
        output: ToolOutput
        if self.result_kind == "data":
            output = {"structured": self._data(result)}
        elif self.result_kind == "content":
            output = {"content": self._content(result)}
        elif not isinstance(result, ToolResult):
            raise ToolError(f"tool {self.name!r} must return a ToolResult, not {type(result).__name__}")
        else:
            output = {"content": self._content(result.content)}
            if result.structured is not None or self.output_schema is not None:
                output["structured"] = self._data(result.structured)
        return output

    def _data(self, value: Any) -> Any:
        adapter = self.result_adapter or TypeAdapter(Any)
        try:
            return adapter.dump_python(adapter.validate_python(value), mode="json")
        except ValidationError as exc:
            raise ToolError(
                f"tool {self.name!r} returned a result that does not match its output schema: {exc}"
            ) from exc

    def _content(self, value: Any) -> list[dict[str, Any]]:
        try:
            return content_blocks(value)
        except TypeError as exc:
            raise ToolError(f"tool {self.name!r} returned something that is not content: {exc}") from exc


def _description(fn: Callable[..., Any]) -> str:
    doc = inspect.getdoc(fn) or ""
    paragraphs = [p.strip() for p in doc.split("\n\n") if p.strip()]
    return " ".join(paragraphs[0].split()) if paragraphs else fn.__name__.replace("_", " ")


def _strip_titles(schema: Any) -> Any:
    """pydantic adds a `title` to every property; they only add tokens to a model's context."""
    if isinstance(schema, dict):
        return {
            key: _strip_titles(value)
            for key, value in schema.items()
            if not (key == "title" and isinstance(value, str))
        }
    if isinstance(schema, list):
        return [_strip_titles(item) for item in schema]
    return schema


_HEADER_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


def _check_mirrored_headers(
    tool_name: str, schema: Any, path: str = "", seen: set[str] | None = None
) -> None:
    """Refuse `x-mcp-header` marks that clients would reject (they drop the whole tool)."""
    seen = set() if seen is None else seen
    if not isinstance(schema, dict):
        return
    for key, value in schema.items():
        if key == "properties" and isinstance(value, dict):
            for name, sub in value.items():
                where = f"{path}.{name}" if path else name
                if isinstance(sub, dict) and "x-mcp-header" in sub:
                    header = sub["x-mcp-header"]
                    if not isinstance(header, str) or not _HEADER_TOKEN.match(header):
                        raise TypeError(
                            f"tool {tool_name!r}: x-mcp-header of {where!r} must be an HTTP token"
                        )
                    if sub.get("type") not in ("string", "integer", "boolean"):
                        raise TypeError(
                            f"tool {tool_name!r}: x-mcp-header needs a string, integer or boolean "
                            f"argument; {where!r} is not one"
                        )
                    if header.lower() in seen:
                        raise TypeError(f"tool {tool_name!r}: x-mcp-header {header!r} is used twice")
                    seen.add(header.lower())
                _check_mirrored_headers(tool_name, sub, where, seen)
        elif key != "properties" and _mentions_header(value):
            raise TypeError(
                f"tool {tool_name!r}: x-mcp-header may only mark arguments reachable through "
                "properties (not inside arrays, $defs or anyOf)"
            )


def _mentions_header(value: Any) -> bool:
    if isinstance(value, dict):
        return "x-mcp-header" in value or any(_mentions_header(v) for v in value.values())
    if isinstance(value, list):
        return any(_mentions_header(v) for v in value)
    return False


def _is_content(annotation: Any) -> bool:
    """Whether a return annotation is content: str, a content block, or unions and lists of them."""
    if annotation is str or (isinstance(annotation, type) and issubclass(annotation, ContentBlock)):
        return True
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        return all(_is_content(arg) for arg in get_args(annotation))
    if origin in (list, tuple, collections.abc.Sequence):
        args = [arg for arg in get_args(annotation) if arg is not Ellipsis]
        return bool(args) and all(_is_content(arg) for arg in args)
    return False


def _data_shape(tool_name: str, annotation: Any) -> tuple[TypeAdapter[Any], dict[str, Any]]:
    adapter: TypeAdapter[Any] = TypeAdapter(annotation)
    schema = _strip_titles(adapter.json_schema(mode="serialization"))
    if schema.get("type") != "object":
        raise TypeError(
            f"tool {tool_name!r} must return an object (a TypedDict or pydantic model), content "
            f"(str or workers.content blocks) or a ToolResult; got schema {schema}"
        )
    return adapter, schema


def _result_shape(
    tool_name: str, annotation: Any
) -> tuple[ResultKind, TypeAdapter[Any] | None, dict[str, Any] | None]:
    if _is_content(annotation):
        return "content", None, None
    if annotation is ToolResult or get_origin(annotation) is ToolResult:
        args = get_args(annotation)
        if not args:
            return "mixed", None, None
        return ("mixed", *_data_shape(tool_name, args[0]))
    return ("data", *_data_shape(tool_name, annotation))


def _define(
    fn: Callable[..., Any],
    *,
    name: str | None,
    title: str | None,
    description: str | None,
    timeout: float,
    idempotent: bool,
    annotations: dict[str, Any] | None,
    input_schema: dict[str, Any] | None = None,
    client_capabilities: dict[str, Any] | None = None,
    task: TaskMode = "optional",
) -> ToolDefinition:
    tool_name = name or fn.__name__
    if task not in TASK_SUPPORT:
        raise ValueError(f"tool {tool_name!r}: task must be one of {', '.join(TASK_SUPPORT)}, not {task!r}")
    if not TOOL_NAME.match(tool_name):
        raise ValueError(f"tool name {tool_name!r} must be 1-128 characters of [A-Za-z0-9_.-]")
    if timeout <= 0:
        raise ValueError("timeout must be positive")
    hints = get_type_hints(fn, include_extras=True)
    if "return" not in hints:
        raise TypeError(
            f"tool {tool_name!r} needs a return annotation (a pydantic model or TypedDict, str or "
            "workers.content blocks, or a ToolResult)"
        )

    fields: dict[str, Any] = {}
    context_parameter = None
    for parameter in inspect.signature(fn).parameters.values():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            raise TypeError(f"tool {tool_name!r}: *args and **kwargs cannot be described as a schema")
        annotation = hints.get(parameter.name)
        if annotation is None:
            raise TypeError(f"tool {tool_name!r}: parameter {parameter.name!r} needs a type annotation")
        if annotation is ToolContext:
            if not inspect.iscoroutinefunction(fn):
                raise TypeError(
                    f"tool {tool_name!r}: a ToolContext's methods are async; make the tool `async def` "
                    "to report progress or log"
                )
            context_parameter = parameter.name
            continue
        default = ... if parameter.default is parameter.empty else parameter.default
        fields[parameter.name] = (annotation, default)

    model_name = "".join(part.capitalize() for part in re.split(r"[_.-]", tool_name)) + "Arguments"
    arguments_model = create_model(model_name, __config__=ConfigDict(extra="forbid"), **fields)
    if input_schema is None:
        input_schema = {"$schema": JSON_SCHEMA_DIALECT, **_strip_titles(arguments_model.model_json_schema())}
        input_schema.setdefault("properties", {})
    elif input_schema.get("type") != "object":
        raise TypeError(f"tool {tool_name!r}: an input_schema must describe an object (type: object)")
    _check_mirrored_headers(tool_name, input_schema)

    result_kind, result_adapter, output_schema = _result_shape(tool_name, hints["return"])
    return ToolDefinition(
        name=tool_name,
        title=title,
        description=description or _description(fn),
        fn=fn,
        arguments_model=arguments_model,
        result_adapter=result_adapter,
        result_kind=result_kind,
        input_schema=input_schema,
        output_schema=output_schema,
        timeout=timeout,
        idempotent=idempotent,
        annotations=dict(annotations or {}),
        context_parameter=context_parameter,
        client_capabilities=dict(client_capabilities or {}),
        task=task,
    )


@overload
def tool(fn: Callable[..., Any], /) -> ToolDefinition: ...
@overload
def tool(
    *,
    name: str | None = None,
    title: str | None = None,
    description: str | None = None,
    timeout: float = 30.0,
    idempotent: bool = False,
    annotations: dict[str, Any] | None = None,
    input_schema: dict[str, Any] | None = None,
    client_capabilities: dict[str, Any] | None = None,
    task: TaskMode = "optional",
) -> Callable[[Callable[..., Any]], ToolDefinition]: ...
def tool(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    title: str | None = None,
    description: str | None = None,
    timeout: float = 30.0,
    idempotent: bool = False,
    annotations: dict[str, Any] | None = None,
    input_schema: dict[str, Any] | None = None,
    client_capabilities: dict[str, Any] | None = None,
    task: TaskMode = "optional",
) -> ToolDefinition | Callable[[Callable[..., Any]], ToolDefinition]:
    """Declare a tool. `idempotent=True` lets a job interrupted by a dying worker run again;
    otherwise an interrupted call fails rather than risk running twice.

    `input_schema` publishes a hand-written schema instead of the one derived from the
    parameters (for rules a signature cannot say, such as "phone or email"); calls are checked
    against it before they are queued. `client_capabilities` names what the client must have
    declared for a call to be made (e.g. {"sampling": {}}).

    `task` says whether a call may become an MCP task (a client that takes tasks gets a task
    handle for a call still running after a moment, and polls it): "optional" (the default),
    "always" (every call is a task; a client that takes none is refused), or "never"."""

    def wrap(f: Callable[..., Any]) -> ToolDefinition:
        return _define(
            f,
            name=name,
            title=title,
            description=description,
            timeout=timeout,
            idempotent=idempotent,
            annotations=annotations,
            input_schema=input_schema,
            client_capabilities=client_capabilities,
            task=task,
        )

    return wrap(fn) if fn is not None else wrap

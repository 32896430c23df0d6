"""`@tool`: a typed Python function becomes an MCP tool.

The name, description, input schema (from the parameters) and output schema (from the return
annotation) are derived from the function, never written twice. A tool may take a
`ToolContext` parameter (any name) to report progress; it is not part of the input schema.
"""

from __future__ import annotations

import asyncio
import inspect
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, get_type_hints, overload

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError, WithJsonSchema, create_model

TOOL_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")

#: A JSON number that stays an int when given an int (15 + 27 is 42, not 42.0).
Number = Annotated[int | float, WithJsonSchema({"type": "number"})]


class ToolError(Exception):
    """Raise from a tool to fail the call with a message the model can act on."""


class ToolContext:
    """Handed to tools that ask for it: progress reporting for the call in hand."""

    def __init__(self, report: Callable[[float, float | None, str | None], Awaitable[None]]):
        self._report = report

    async def report_progress(
        self, progress: float, total: float | None = None, message: str | None = None
    ) -> None:
        await self._report(progress, total, message)


@dataclass(frozen=True)
class ToolDefinition:
    name: str
    description: str
    fn: Callable[..., Any]
    arguments_model: type[BaseModel]
    result_adapter: TypeAdapter[Any]
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
    timeout: float
    idempotent: bool
    title: str | None = None
    annotations: dict[str, Any] = field(default_factory=dict)
    context_parameter: str | None = None

    def spec(self) -> dict[str, Any]:
        """The MCP `Tool` object plus toolq's own routing fields (under `x-toolq`)."""
        spec: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "inputSchema": self.input_schema,
            "outputSchema": self.output_schema,
        }
        if self.title:
            spec["title"] = self.title
        annotations = {"idempotentHint": self.idempotent, **self.annotations}
        if self.title and "title" not in annotations:
            annotations["title"] = self.title
        spec["annotations"] = annotations
        spec["x-toolq"] = {"timeout": self.timeout, "idempotent": self.idempotent}
        return spec

    def validate_arguments(self, arguments: dict[str, Any]) -> BaseModel:
        return self.arguments_model.model_validate(arguments)

    async def invoke(self, arguments: dict[str, Any], context: ToolContext) -> dict[str, Any]:
        """Validate, run and serialize; raises ValidationError, ToolError or whatever the tool raises."""
        validated = self.validate_arguments(arguments)
        kwargs = {name: getattr(validated, name) for name in type(validated).model_fields}
        if self.context_parameter:
            kwargs[self.context_parameter] = context
        if inspect.iscoroutinefunction(self.fn):
            result = await self.fn(**kwargs)
        else:
            # A plain function may block (CPU or sync I/O): keep the worker's event loop free.
            result = await asyncio.to_thread(self.fn, **kwargs)
        try:
            dumped = self.result_adapter.dump_python(self.result_adapter.validate_python(result), mode="json")
        except ValidationError as exc:
            raise ToolError(
                f"tool {self.name!r} returned a result that does not match its output schema: {exc}"
            ) from exc
        return dumped  # type: ignore[no-any-return]


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


def _define(
    fn: Callable[..., Any],
    *,
    name: str | None,
    title: str | None,
    description: str | None,
    timeout: float,
    idempotent: bool,
    annotations: dict[str, Any] | None,
) -> ToolDefinition:
    tool_name = name or fn.__name__
    if not TOOL_NAME.match(tool_name):
        raise ValueError(f"tool name {tool_name!r} must be 1-128 characters of [A-Za-z0-9_.-]")
    if timeout <= 0:
        raise ValueError("timeout must be positive")
    hints = get_type_hints(fn, include_extras=True)
    if "return" not in hints:
        raise TypeError(f"tool {tool_name!r} needs a return annotation (a TypedDict or pydantic model)")

    fields: dict[str, Any] = {}
    context_parameter = None
    for parameter in inspect.signature(fn).parameters.values():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            raise TypeError(f"tool {tool_name!r}: *args and **kwargs cannot be described as a schema")
        annotation = hints.get(parameter.name)
        if annotation is None:
            raise TypeError(f"tool {tool_name!r}: parameter {parameter.name!r} needs a type annotation")
        if annotation is ToolContext:
            context_parameter = parameter.name
            continue
        default = ... if parameter.default is parameter.empty else parameter.default
        fields[parameter.name] = (annotation, default)

    model_name = "".join(part.capitalize() for part in re.split(r"[_.-]", tool_name)) + "Arguments"
    arguments_model = create_model(model_name, __config__=ConfigDict(extra="forbid"), **fields)
    input_schema = _strip_titles(arguments_model.model_json_schema())
    input_schema.setdefault("properties", {})

    result_adapter: TypeAdapter[Any] = TypeAdapter(hints["return"])
    output_schema = _strip_titles(result_adapter.json_schema(mode="serialization"))
    if output_schema.get("type") != "object":
        raise TypeError(
            f"tool {tool_name!r} must return an object (a TypedDict or pydantic model), "
            f"got schema {output_schema}"
        )
    return ToolDefinition(
        name=tool_name,
        title=title,
        description=description or _description(fn),
        fn=fn,
        arguments_model=arguments_model,
        result_adapter=result_adapter,
        input_schema=input_schema,
        output_schema=output_schema,
        timeout=timeout,
        idempotent=idempotent,
        annotations=dict(annotations or {}),
        context_parameter=context_parameter,
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
) -> ToolDefinition | Callable[[Callable[..., Any]], ToolDefinition]:
    """Declare a tool. `idempotent=True` lets a job interrupted by a dying worker run again;
    otherwise an interrupted call fails rather than risk running twice."""

    def wrap(f: Callable[..., Any]) -> ToolDefinition:
        return _define(
            f,
            name=name,
            title=title,
            description=description,
            timeout=timeout,
            idempotent=idempotent,
            annotations=annotations,
        )

    return wrap(fn) if fn is not None else wrap

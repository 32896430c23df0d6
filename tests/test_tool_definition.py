"""@tool: the contract of a tool is derived from its Python signature, never written twice."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Annotated

import pytest
from pydantic import BaseModel, Field, ValidationError

from workers.definition import ToolContext, ToolDefinition, tool
from workers.tools import discover, select


class Echoed(BaseModel):
    text: str
    times: int


def test_schemas_come_from_the_signature_and_the_return_type():
    @tool(timeout=5, idempotent=True, title="Echo")
    async def echo(
        text: Annotated[str, Field(description="What to repeat")], ctx: ToolContext, times: int = 1
    ) -> Echoed:
        """Repeat a text.

        More details that a model does not need.
        """
        return Echoed(text=text * times, times=times)

    spec = echo.spec()
    assert spec["name"] == "echo"
    assert spec["title"] == "Echo"
    assert spec["description"] == "Repeat a text."
    assert spec["inputSchema"] == {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "text": {"type": "string", "description": "What to repeat"},
            "times": {"type": "integer", "default": 1},
        },
        "required": ["text"],
    }
    assert spec["outputSchema"]["required"] == ["text", "times"]
    assert spec["annotations"]["idempotentHint"] is True
    assert spec["x-toolq"] == {"timeout": 5, "idempotent": True, "task": "optional"}
    assert spec["execution"] == {"taskSupport": "optional"}
    assert echo.context_parameter == "ctx"


def test_a_number_keeps_integers_integral():
    add = discover()["add"]
    assert add.input_schema["properties"]["a"] == {"type": "number"}
    assert add.validate_arguments({"a": 15, "b": 2.5}).model_dump() == {"a": 15, "b": 2.5}


async def test_invoke_validates_and_serializes():
    add = discover()["add"]
    assert await add.invoke({"a": 15, "b": 27}) == {"structured": {"a": 15, "b": 27, "sum": 42}}
    with pytest.raises(ValidationError):
        await add.invoke({"a": 1})


def test_a_tool_without_a_return_annotation_is_refused():
    with pytest.raises(TypeError, match="return annotation"):

        @tool
        def nothing(a: int):  # type: ignore[no-untyped-def]
            return {}


def test_a_tool_returning_a_non_object_is_refused():
    with pytest.raises(TypeError, match="must return an object"):

        @tool
        def number(a: int) -> int:
            return a


def test_untyped_parameters_and_varargs_are_refused():
    with pytest.raises(TypeError, match="needs a type annotation"):

        @tool
        def untyped(a) -> Echoed:  # type: ignore[no-untyped-def]
            return Echoed(text="", times=0)

    with pytest.raises(TypeError, match=r"\*args"):

        @tool
        def varargs(*a: int) -> Echoed:
            return Echoed(text="", times=0)


def test_tool_names_follow_the_spec():
    with pytest.raises(ValueError, match="tool name"):
        tool(name="has space")(lambda: None)


def test_the_default_tool_set_has_add_and_weather_and_no_test_fixture():
    served = set(discover())
    assert {"add", "weather"} <= served
    assert not {name for name in served if name.startswith(("test_", "json_schema_"))}
    assert [d.name for d in select(discover(), ["weather", "add"])] == ["add", "weather"]
    with pytest.raises(ValueError, match="unknown tool"):
        select(discover(), ["add", "nope"])


async def test_the_readme_example_tool_is_a_working_tool(tmp_path, monkeypatch):
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    source = readme.split("# workers/tools/multiply.py\n", 1)[1].split("```", 1)[0]
    (tmp_path / "readme_multiply.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    multiply = importlib.import_module("readme_multiply").multiply
    assert isinstance(multiply, ToolDefinition)
    assert multiply.spec()["inputSchema"]["properties"]["b"] == {
        "type": "number",
        "description": "The multiplier",
    }
    assert await multiply.invoke({"a": 6, "b": 7}) == {"structured": {"product": 42}}

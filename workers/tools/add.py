from pydantic import BaseModel

from workers.definition import Number, tool


class Sum(BaseModel):
    a: Number
    b: Number
    sum: Number


@tool(idempotent=True, annotations={"readOnlyHint": True, "openWorldHint": False})
async def add(a: Number, b: Number) -> Sum:
    """Add two numbers and return both operands with their sum."""
    return Sum(a=a, b=b, sum=a + b)

"""The tools toolq serves: every `@tool` function in a module of this package.

Adding a tool is adding one function, in a new module here or an existing one.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable

from workers.definition import ToolDefinition


def discover(package: str = __name__) -> dict[str, ToolDefinition]:
    """Every ToolDefinition found at the top level of the modules of `package`, by name."""
    found: dict[str, ToolDefinition] = {}
    root = importlib.import_module(package)
    for module_info in sorted(pkgutil.iter_modules(root.__path__), key=lambda m: m.name):
        if module_info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package}.{module_info.name}")
        for value in vars(module).values():
            if isinstance(value, ToolDefinition):
                if value.name in found and found[value.name] is not value:
                    raise ValueError(f"two tools are named {value.name!r}")
                found[value.name] = value
    return found


def select(available: dict[str, ToolDefinition], names: Iterable[str] | None) -> list[ToolDefinition]:
    """The tools named (all when `names` is None), in name order; unknown names are an error."""
    if names is None:
        return [available[name] for name in sorted(available)]
    wanted = sorted({name.strip() for name in names if name.strip()})
    unknown = [name for name in wanted if name not in available]
    if unknown:
        raise ValueError(f"unknown tool(s): {', '.join(unknown)}; available: {', '.join(sorted(available))}")
    if not wanted:
        raise ValueError("no tools selected")
    return [available[name] for name in wanted]

"""The tools toolq serves: every `@tool` function in a module of this package.

Adding a tool is adding one function, in a new module here or an existing one. Tools kept
elsewhere (another package of yours, or test fixtures) are served with
`python -m workers --tool-modules my.tools` (env TOOLQ_TOOL_MODULES).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable

from workers.definition import ToolDefinition


def discover(package: str = __name__, extra_modules: Iterable[str] = ()) -> dict[str, ToolDefinition]:
    """Every ToolDefinition at the top level of the modules of `package`, and of each of
    `extra_modules` (a module, or a package whose modules are searched), by name."""
    found: dict[str, ToolDefinition] = {}
    for name in (package, *extra_modules):
        root = importlib.import_module(name)
        modules = [root]
        if hasattr(root, "__path__"):
            infos = sorted(pkgutil.iter_modules(root.__path__), key=lambda m: m.name)
            modules = [
                importlib.import_module(f"{name}.{i.name}") for i in infos if not i.name.startswith("_")
            ]
        for module in modules:
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

"""Where a problem is in a runbook file: pydantic and YAML error locations turned into file lines, table, row id and
field path, so that a refusal names the exact place to fix."""

from __future__ import annotations

from typing import Any

import yaml


def row_ids(node: yaml.Node | None, loc: tuple[Any, ...]) -> dict[str, Any]:
    """Just enough of a refused document for `locate` to name the row at `loc`: its id, read from the node tree
    (the document itself is not built: it was refused)."""
    if len(loc) < 4 or loc[0] != "tables" or loc[2] != "rows" or not isinstance(loc[3], int):
        return {}
    for key in ("tables", loc[1], "rows", loc[3], "id"):
        if isinstance(node, yaml.MappingNode):
            node = next((value for k, value in node.value if isinstance(k, yaml.ScalarNode) and k.value == key), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        else:
            return {}
    if not isinstance(node, yaml.ScalarNode):
        return {}
    return {"tables": {loc[1]: {"rows": {loc[3]: {"id": node.value}}}}}


def locate(raw: Any, loc: tuple[Any, ...]) -> tuple[str, str, str]:
    """Turn a pydantic error location into (table, row id, field path)."""
    if len(loc) >= 2 and loc[0] == "tables":
        table = str(loc[1])
        if len(loc) >= 4 and loc[2] == "rows" and isinstance(loc[3], int):
            try:
                row_id = str(raw["tables"][table]["rows"][loc[3]].get("id", f"#{loc[3] + 1}"))
            except (KeyError, IndexError, TypeError, AttributeError):
                row_id = f"#{loc[3] + 1}"
            return table, row_id, ".".join(str(p) for p in loc[4:])
        return table, "", ".".join(str(p) for p in loc[2:])
    return "", "", ".".join(str(p) for p in loc)


def line_index(node: yaml.Node | None, path: tuple[Any, ...] = ()) -> dict[tuple[Any, ...], int]:
    """Map each YAML path to its 1-based line number."""
    index: dict[tuple[Any, ...], int] = {}
    if node is None:
        return index
    index[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = (*path, key.value)
            index[child] = key.start_mark.line + 1
            index.update({k: v for k, v in line_index(value, child).items() if k != child})
    elif isinstance(node, yaml.SequenceNode):
        for position, item in enumerate(node.value):
            index.update(line_index(item, (*path, position)))
    return index


def closest(path: tuple[Any, ...], lines: dict[tuple[Any, ...], int]) -> tuple[Any, ...]:
    while path and path not in lines:
        path = path[:-1]
    return path

"""YAML documents read safely: one parse into libyaml's node tree, checked before anything is built from it.

The runbook and scenario loaders parse a file once into its node tree (`compose`), check the tree (`check_tree`),
then build the data (`construct`). The check walks each distinct node once (aliases are shared nodes in the tree,
so an alias bomb is small there), computes how large and how deep the document is once its aliases are expanded,
and refuses, with the line and the path of the node at fault:

- a document that expands past `MAX_NODES` nodes ("billion laughs": nine aliases of nine aliases of … are a few
  hundred bytes, and hundreds of millions of nodes once the data is built and validated);
- nesting deeper than `MAX_DEPTH` (the recursive walks that follow would end in RecursionError);
- an alias of a node inside itself (a recursive structure no loader of Medic's expects);
- a mapping that repeats a key (YAML requires unique keys; PyYAML keeps the last one silently).

    >>> check_tree(compose("a: &x [1, 2]\\nb: *x\\n"))
    >>> check_tree(compose("mode: auto\\nmode: notify\\n"))
    Traceback (most recent call last):
    ...
    medic.yaml_tree.YamlRefused: line 2: duplicate key 'mode' (first at line 1)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

import yaml

#: Nodes a document may hold once its aliases are expanded: the shipped runbook holds ~4,000, a 2,000-row one
#: ~60,000; an alias bomb holds billions.
MAX_NODES: Final = 500_000
#: Levels of nesting: a runbook's deepest value (tables → signal → rows → row → actions → action → params → value)
#: is 8 levels down, a scenario's about as deep.
MAX_DEPTH: Final = 64
_MERGE_TAG: Final = "tag:yaml.org,2002:merge"

#: libyaml's parser where PyYAML has it (its wheels do: the CLI, the tests), else the pure-Python one: same documents,
#: same errors, same line marks. The C one composes the shipped runbook ~10× faster (~40 ms against ~400 ms), but the
#: Lambda layer leaves the 2.7 MB binding out to stay under its size target (shared/Makefile), so in Lambda a cold
#: start that loads the runbook pays the pure-Python parse once.
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class YamlRefused(yaml.YAMLError):
    """The document is refused before it is built: what is wrong, where (1-based line), and the path to the node
    (keys and positions from the root, e.g. ``("tables", "spillover", "rows", 3, "mode")``)."""

    def __init__(self, problem: str, line: int, path: tuple[Any, ...]) -> None:
        super().__init__(problem, line, path)
        self.problem = problem
        self.line = line
        self.path = path

    def __str__(self) -> str:
        return f"line {self.line}: {self.problem}"


def compose(text: str) -> yaml.Node | None:
    """The document's node tree (one parse: the data and a line index can both come from it)."""
    loader = _Loader(text)
    try:
        return loader.get_single_node()  # type: ignore[no-any-return]
    finally:
        loader.dispose()


def construct(node: yaml.Node | None) -> Any:
    """The data of a node tree (checked first with `check_tree`)."""
    if node is None:
        return None
    loader = _Loader("")
    try:
        return loader.construct_document(node)
    finally:
        loader.dispose()


def load(text: str) -> Any:
    """`compose`, `check_tree`, `construct`: the data of a YAML document, or `YamlRefused` / `yaml.YAMLError`."""
    node = compose(text)
    check_tree(node)
    return construct(node)


def check_tree(root: yaml.Node | None, *, max_nodes: int = MAX_NODES, max_depth: int = MAX_DEPTH) -> None:
    """Refuse (`YamlRefused`) a tree that expands past `max_nodes`, nests deeper than `max_depth`, holds an alias
    of a node inside itself, or a mapping that repeats a key. Each distinct node is visited once, without recursion:
    the time is linear in the size of the text, whatever its aliases expand to."""
    if root is None:
        return
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, tuple[Any, ...], bool]] = [(root, (), False)]
    while stack:
        node, path, finished = stack.pop()
        key = id(node)
        if finished:
            open_nodes.discard(key)
            children = [id(child) for child, _ in _children(node, path)]
            size[key] = min(1 + sum(size[child] for child in children), max_nodes + 1)
            depth[key] = 1 + max((depth[child] for child in children), default=0)
            if size[key] > max_nodes:
                raise YamlRefused(
                    f"more than {max_nodes:,} values once its aliases are expanded (an alias bomb?)", _line(node), path
                )
            if depth[key] > max_depth:
                raise YamlRefused(f"nested more than {max_depth} levels deep", _line(node), path)
            continue
        if key in size:
            continue
        if key in open_nodes:
            raise YamlRefused("an alias of a node inside itself (a recursive structure)", _line(node), path)
        open_nodes.add(key)
        if isinstance(node, yaml.MappingNode):
            _check_unique_keys(node, path)
        stack.append((node, path, True))
        stack.extend((child, child_path, False) for child, child_path in _children(node, path) if id(child) not in size)


def _children(node: yaml.Node, path: tuple[Any, ...]) -> Iterator[tuple[yaml.Node, tuple[Any, ...]]]:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            yield key, path
            yield value, (*path, key.value) if isinstance(key, yaml.ScalarNode) else path
    elif isinstance(node, yaml.SequenceNode):
        for position, item in enumerate(node.value):
            yield item, (*path, position)


def _check_unique_keys(node: yaml.MappingNode, path: tuple[Any, ...]) -> None:
    seen: dict[tuple[str, str], int] = {}
    for key, _ in node.value:
        if not isinstance(key, yaml.ScalarNode) or key.tag == _MERGE_TAG:
            continue
        first = seen.get((key.tag, key.value))
        if first is not None:
            raise YamlRefused(f"duplicate key {key.value!r} (first at line {first})", _line(key), (*path, key.value))
        seen[(key.tag, key.value)] = _line(key)


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1

"""The variable tree Octostache evaluates against.

`Octopus.Action[Deploy].Name = x` becomes root → `Octopus` → `Action` → index `Deploy` →
`Name` (item `x`). Named children and indexed children are kept apart, as in Octostache:
`#{each a in Octopus.Action}` iterates the indexed ones, and an indexed child's own item
is its index (so `#{a}` prints `Deploy`). Keys compare case-insensitively.
"""

from __future__ import annotations

from collections.abc import Mapping

from cephalo_common.variables.ast import Identifier, Indexer, fold
from cephalo_common.variables.parser import parse_symbol_path


class Binding:
    __slots__ = ("children", "indexable", "item")

    def __init__(self, item: str | None = None) -> None:
        self.item = item
        self.children: dict[str, Binding] = {}
        self.indexable: dict[str, Binding] = {}


def build_binding(variables: Mapping[str, str]) -> Binding:
    """Bind every name that parses as a path; a later duplicate (by case) wins.

    Octostache binds the longest path prefix of a name it cannot parse whole (so `A$B`
    silently binds as `A`); here such names are left out of the tree instead. They can
    still be read directly with `evaluate_value`.
    """
    root = Binding()
    for name, value in variables.items():
        path = parse_symbol_path(name)
        if path is None or any(isinstance(step, Indexer) and step.symbol for step in path.steps):
            continue
        node = root
        for step in path.steps:
            if isinstance(step, Identifier):
                node = node.children.setdefault(fold(step.text), Binding())
            else:
                index = step.index or ""
                next_node = node.indexable.get(fold(index))
                if next_node is None:
                    next_node = node.indexable[fold(index)] = Binding(index)
                node = next_node
        node.item = value
    return root


def each_locals(enumerator: str, item: Binding, index: int, count: int) -> Binding:
    """One `#{each}` iteration: the item plus `Octopus.Template.Each.*` (and `Cephalo.…`)."""
    scope = Binding()
    each = Binding()
    each.children = {
        "index": Binding(str(index)),
        "first": Binding("True" if index == 0 else "False"),
        "last": Binding("True" if index == count - 1 else "False"),
    }
    template = Binding()
    template.children["each"] = each
    for prefix in ("octopus", "cephalo"):
        root = Binding()
        root.children["template"] = template
        scope.children[prefix] = root
    scope.children[fold(enumerator)] = item
    return scope

"""Reading YAML settings safely: values only, and bounded in size and depth.

`yaml.safe_load` already refuses tags that build Python objects. Two inputs still get
through it and hurt (both found by tests/fuzz/test_fuzz_config.py):
- anchors and aliases expand without limit when the settings are validated: nine lines of
  `&a [*b, *b, ...]` stand for 10**9 values, and validation never ends ("billion laughs");
- thousands of nested brackets overflow Python's recursion limit inside PyYAML.
So the document is composed first, its size counted with every alias expanded (an
iterative walk that stops at the limit), and only then turned into values.
"""

from __future__ import annotations

from typing import Any

import yaml

MAX_NODES = 100_000  # a large multi-camera file has a few thousand
MAX_DEPTH = 64  # settings nest five or six levels deep


class YamlLimitError(ValueError):
    """The document is too large or too deep once its aliases are expanded."""


def _check_size(root: yaml.Node) -> None:
    count = 0
    stack: list[tuple[yaml.Node, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise YamlLimitError(f"more than {MAX_NODES} values once anchors and aliases are expanded")
        if depth > MAX_DEPTH:
            raise YamlLimitError(f"nested more than {MAX_DEPTH} levels deep")
        if isinstance(node, yaml.SequenceNode):
            stack.extend((child, depth + 1) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                stack.extend(((key, depth + 1), (value, depth + 1)))


def load_yaml(text: str) -> Any:
    """The values of one YAML document (None when empty), as `yaml.safe_load` gives them.

    Raises yaml.YAMLError for a syntax error and YamlLimitError for a document too large
    or too deep."""
    loader = yaml.SafeLoader(text)
    try:
        try:
            root = loader.get_single_node()
        except RecursionError:
            raise YamlLimitError(f"nested more than {MAX_DEPTH} levels deep") from None
        if root is None:
            return None
        _check_size(root)
        return loader.construct_document(root)
    finally:
        loader.dispose()

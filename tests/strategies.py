"""Hypothesis helpers shared by the property tests."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st


def mutate(
    data: st.DataObject,
    document: Any,
    values: st.SearchStrategy[Any],
    names: st.SearchStrategy[str],
) -> Any:
    """Walk into a copy of `document` along existing members, then replace, delete or add
    one (new values from `values`, new member names from `names`)."""
    document = json.loads(json.dumps(document))
    node = document
    while True:
        keys: list[Any] = list(node) if isinstance(node, dict) else list(range(len(node)))
        if not keys:
            break
        key = data.draw(st.sampled_from(keys))
        child = node[key]
        if isinstance(child, dict | list) and child and data.draw(st.booleans()):
            node = child
            continue
        action = data.draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            node[key] = data.draw(values)
        elif action == "delete" or not isinstance(node, dict):
            del node[key]
        else:
            node[data.draw(names)] = data.draw(values)
        break
    return document

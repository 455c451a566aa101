"""Which events start or extend a clip: a source's `clips.rules` (pipeline/core/clips_config.py).

Rules: an event matches a rule when its type is one of the rule's `types`, its class name
(`label`) one of its `classes` (when given), and, when the rule names `zones` or `lines`,
the event is a zone event of one of those zones or a line event of one of those lines
(a track event has no place: it never matches a rule that names places). An event
matches the source's rules when it matches any of them. Class names are checked against
the model's when the run starts, with the allowed names in the error.
"""

from __future__ import annotations

from collections.abc import Iterable

from pipeline.core.clips_config import ClipRule
from pipeline.core.errors import ConfigError
from pipeline.core.events import Event


class Rules:
    def __init__(self, rules: Iterable[ClipRule]) -> None:
        self.rules = tuple(rules)
        # the classes any rule can match; None: every class
        self.classes: frozenset[str] | None = (
            None if any(rule.classes is None for rule in self.rules)
            else frozenset(name for rule in self.rules for name in rule.classes or ())
        )

    def match(self, event: Event) -> bool:
        return any(_matches(rule, event.body) for rule in self.rules)


def _matches(rule: ClipRule, body: dict) -> bool:
    if body["type"] not in rule.types:
        return False
    if rule.classes is not None and body.get("label") not in rule.classes:
        return False
    if rule.zones or rule.lines:
        return body.get("zone") in rule.zones or body.get("line") in rule.lines
    return True


def check_classes(rules: Iterable[ClipRule], class_names: tuple[str, ...], key: str) -> None:
    """Every class name of `rules` is one of the model's (a typo would match nothing)."""
    known = [name for name in class_names if name != "__background__"]
    for index, rule in enumerate(rules):
        unknown = [name for name in rule.classes or () if name not in known]
        if unknown:
            raise ConfigError(f"{key}.rules.{index}.classes: {unknown[0]!r} is not a class of the model "
                              f"(allowed: {', '.join(known)})", field=f"{key}.rules.{index}.classes")

"""Markdown pieces the report's renderers share: a table, and the verdict on a target
(met, or missed by how much), always computed from the measured value."""

from __future__ import annotations


def verdict(value: float, target: float, unit: str = "") -> str:
    """'met' or 'missed by X' for a value that must reach at least `target`."""
    if value >= target:
        return f"**met** ({value:g}{unit} ≥ {target:g}{unit})"
    return f"**missed** by {target - value:.3g}{unit} ({value:g}{unit} < {target:g}{unit})"


def at_most(value: float, limit: float, unit: str = "") -> str:
    """'met' or 'missed by X' for a value that must stay within `limit`."""
    if value <= limit:
        return f"**met** ({value:g}{unit} ≤ {limit:g}{unit})"
    return f"**missed** by {value - limit:.3g}{unit} ({value:g}{unit} > {limit:g}{unit}, {value / limit:.2f}x the bound)"


def table(header: list[str], rows: list[list[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]

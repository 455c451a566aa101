"""The docs stay true to the code: every config key documented, every relative link alive,
README.md an entry point (short)."""

from __future__ import annotations

import re
import types
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
README_MAX_LINES = 220

# The settings models and the section of docs/configuration.md that documents each.
SETTINGS = {
    "Run settings": ("pipeline.core.config", "RunConfig"),
    "Batch settings": ("pipeline.batch.config", "BatchSettings"),
    "Training settings": ("engines.training.config", "TrainConfig"),
}


def _nested_models(annotation: object) -> list[type[BaseModel]]:
    """Settings classes anywhere inside an annotation (`X | None`, `list[X]`, ...)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _nested_models(arg)]


def _is_list(annotation: object) -> bool:
    if typing.get_origin(annotation) is list:
        return True
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return any(_is_list(arg) for arg in typing.get_args(annotation))
    return False


def config_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Dotted keys of every leaf setting; `sources[].uri` for fields of list items."""
    keys: list[str] = []
    for name, field in model.model_fields.items():
        nested = _nested_models(field.annotation)
        if nested:
            if _is_list(field.annotation):
                keys.append(f"{prefix}{name}")  # the list itself is a key too
                keys += config_keys(nested[0], f"{prefix}{name}[].")
            else:
                keys += config_keys(nested[0], f"{prefix}{name}.")
        else:
            keys.append(f"{prefix}{name}")
    return keys


def sections(markdown: str) -> dict[str, str]:
    """Text under each `## ` heading."""
    parts = re.split(r"^## +(.+)$", markdown, flags=re.MULTILINE)
    return {title.strip(): body for title, body in zip(parts[1::2], parts[2::2])}


def test_key_walker_finds_nested_and_list_keys():
    from pipeline.core.config import RunConfig

    keys = config_keys(RunConfig)
    assert {"sources", "sources[].uri", "sources[].reconnect.max_s", "model.path", "metrics.port"} <= set(keys)
    assert "model" not in keys and "sources[].reconnect" not in keys


@pytest.mark.parametrize("section", SETTINGS)
def test_every_config_key_is_in_configuration_md(section):
    module_name, class_name = SETTINGS[section]
    model = getattr(__import__(module_name, fromlist=[class_name]), class_name)
    documented = sections((DOCS / "configuration.md").read_text())
    assert section in documented, f"docs/configuration.md has no '## {section}' section"
    body = documented[section]
    # a key is documented when it appears as `key` in a table row of its section
    rows = "\n".join(line for line in body.splitlines() if line.startswith("|"))
    missing = [key for key in config_keys(model) if f"`{key}`" not in rows]
    assert missing == [], f"keys of {class_name} missing from docs/configuration.md '{section}': {missing}"


def markdown_files() -> list[Path]:
    return [REPO / "README.md", *sorted(DOCS.glob("*.md"))]


# [text](target) and ![alt](target); a target ends at whitespace or ')'
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", "", heading).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = FENCE.sub("", path.read_text())
    found: set[str] = set()
    for heading in re.findall(r"^#{1,6} +(.+?) *#*$", text, flags=re.MULTILINE):
        base = slug(heading)
        name, n = base, 0
        while name in found:  # repeated headings get -1, -2, ...
            n += 1
            name = f"{base}-{n}"
        found.add(name)
    return found


def relative_links(path: Path) -> list[str]:
    text = FENCE.sub("", path.read_text())
    text = re.sub(r"`[^`\n]*`", "", text)  # code spans are not links
    return [t for t in LINK.findall(text) if not re.match(r"^[a-z][a-z0-9+.-]*:", t)]


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve(path):
    broken = []
    for target in relative_links(path):
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target}: no heading #{anchor} in {linked.relative_to(REPO)}")
    assert broken == [], f"{path.relative_to(REPO)}: broken links: {broken}"


def test_link_checker_sees_links_and_anchors(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# A page\n\n## How to add a sink\n\n[x](other.md#a) ![i](img.png) `[no](link.md)` [w](https://x.y)\n")
    assert relative_links(page) == ["other.md#a", "img.png"]
    assert "how-to-add-a-sink" in anchors(page)
    assert slug("4. Live latency under overload") == "4-live-latency-under-overload"
    assert slug("What is verified without a GPU, and how") == "what-is-verified-without-a-gpu-and-how"


def test_readme_is_an_entry_point():
    lines = (REPO / "README.md").read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; move detail to docs/"


def test_readme_headline_numbers_are_the_ones_in_benchmarks():
    # one source per figure: the README's table quotes BENCHMARKS.md, it never measures
    section = (REPO / "README.md").read_text().split("## Headline numbers", 1)[1].split("\n## ", 1)[0]
    benchmarks = (REPO / "BENCHMARKS.md").read_text()
    figures = set(re.findall(r"(?<![\w.])\d+\.\d+(?=x?(?![\w.]))", section))
    figures |= set(re.findall(r"(?<![\w.])(\d+) (?:/ \d+ )?ms", section))
    assert len(figures) >= 8, figures
    missing = sorted(f for f in figures if not re.search(rf"(?<![\d.]){re.escape(f)}(?![\d])", benchmarks))
    assert not missing, f"README headline figures not in BENCHMARKS.md: {missing}"

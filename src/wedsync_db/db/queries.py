"""Named SQL loaded from ``.sql`` files that sit next to the code running them.

A file holds blocks introduced by ``-- name: <query_name>`` followed by a one-line comment
saying what the query is for; the text up to the next ``-- name:`` is the query.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources

_NAME = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class NamedQuery:
    """One named statement and its description."""

    name: str
    sql: str
    doc: str


def parse_queries(text: str) -> dict[str, NamedQuery]:
    """Split a .sql file into its named queries (pure)."""
    out: dict[str, NamedQuery] = {}
    matches = list(_NAME.finditer(text))
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        body = text[match.end() : end].strip()
        lines = body.splitlines()
        doc = ""
        if lines and lines[0].startswith("--"):
            doc = lines[0].lstrip("-").strip()
        name = match.group(1)
        if name in out:
            raise ValueError(f"query {name!r} is defined twice")
        out[name] = NamedQuery(name=name, sql=body.rstrip().rstrip(";"), doc=doc)
    return out


@functools.cache
def load_queries(package: str, filename: str) -> dict[str, NamedQuery]:
    """Load (once) the named queries of a .sql file shipped inside a package."""
    text = resources.files(package).joinpath(filename).read_text(encoding="utf-8")
    return parse_queries(text)


def statements(package: str, filename: str) -> Callable[[str], str]:
    """The text of a named query of one .sql file, by name (the file is read on first use)."""

    def text(name: str) -> str:
        return load_queries(package, filename)[name].sql

    return text

"""JSON-ready forms of frozen records: one walker behind every plain ``to_dict``.

A field's ``metadata={"json": ...}`` says how it is written: ``False`` leaves it out,
``"text"`` writes it with ``str`` (64-bit identifiers lose precision as JSON numbers in
JavaScript clients), a callable converts it. Everything else is walked: records become objects,
dates ISO text, tuples lists, and non-finite floats null. Nothing here does I/O.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from datetime import date
from typing import Any

NOT_JSON: Mapping[str, Any] = {"json": False}
JSON_TEXT: Mapping[str, Any] = {"json": "text"}


def json_as(convert: Callable[[Any], Any]) -> Mapping[str, Any]:
    """Field metadata that writes the field as ``convert(value)``."""
    return {"json": convert}


def tenths(value: float) -> float:
    """A duration in milliseconds as written in reports: one decimal."""
    return round(value, 1)


def to_json(value: Any) -> Any:
    """``value`` as plain JSON types (see the module docstring for the field rules)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        for f in dataclasses.fields(value):
            mode = f.metadata.get("json", True)
            if mode is False:
                continue
            item = getattr(value, f.name)
            if callable(mode):
                out[f.name] = mode(item)
            elif mode == "text" and item is not None:
                out[f.name] = str(item)
            else:
                out[f.name] = to_json(item)
        return out
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [to_json(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class JsonRecord:
    """Mixin for a dataclass whose JSON form is its fields, through :func:`to_json`."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        out: dict[str, Any] = to_json(self)
        return out

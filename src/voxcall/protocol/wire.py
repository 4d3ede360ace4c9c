"""Shared wire conventions: camelCase aliases, nulls as absent, proto durations.

PROTOCOL.md 1.2: field names are lowerCamelCase, explicit `null` means "not set",
unknown fields are ignored, and durations are proto strings such as "0.384s" or
"3600.000000s".
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, PlainSerializer, model_validator
from pydantic.alias_generators import to_camel

__all__ = ["Duration", "WireModel", "format_duration", "parse_duration"]

_DURATION = re.compile(r"^(-?(?:0|[1-9][0-9]{0,11})(?:\.[0-9]{1,9})?)s$")


def parse_duration(value: object) -> float:
    """Parse a proto duration string ("30s", "0.384s", "3600.000000s") into seconds.

    Plain numbers are taken as seconds, since some clients send them.
    """
    if isinstance(value, bool):
        raise ValueError("a duration is a string such as '30s'")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value.strip())
        if match:
            return float(match.group(1))
    raise ValueError(f"invalid duration {value!r}: use decimal seconds with an 's' suffix, e.g. '30s' or '0.384s'")


def format_duration(seconds: float) -> str:
    """Format seconds the way the hosted API does: "30s", "0.384s"."""
    if float(seconds).is_integer():
        return f"{int(seconds)}s"
    return f"{seconds:.9f}".rstrip("0") + "s"


Duration = Annotated[float, BeforeValidator(parse_duration), PlainSerializer(format_duration, return_type=str)]
"""Seconds as a float inside; a proto duration string on the wire."""


def _drop_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if v is not None}
    return value


class WireModel(BaseModel):
    """Base of every wire model: camelCase aliases, snake_case accepted, unknown keys and nulls ignored,
    and floats finite (JSON has no NaN or Infinity)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore", allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _nulls_are_absent(cls, data: Any) -> Any:
        return _drop_nulls(data)

    def wire(self) -> dict[str, Any]:
        """The compact JSON form: camelCase keys, unset and null fields left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

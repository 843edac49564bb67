"""Request validation for the local hub, with the real hub's (Joi's) messages.

AIGNE Hub validates bodies with Joi (``abortEarly``: the first failing field, in schema
order, then unknown keys) and answers ``400 {"error": "<Joi message>"}``. The messages
here are Joi's: ``"inputRate" must be greater than or equal to 0``, ``"type" must be one
of [...]``, ``"foo" is not allowed``. Like Joi's default ``convert``, numeric strings are
accepted for numbers and ``"true"``/``"false"`` for booleans.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any


class _Missing:
    """A key absent from the body (distinct from null); falsy, never serialised."""

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:[^\s]+$")


class ApiError(Exception):
    """An answer other than 2xx: ``status`` and the JSON body (``{"error": ...}``)."""

    def __init__(self, status: int, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.status = status
        self.body: dict[str, Any] = {"error": error, **extra}


def fail(message: str) -> ApiError:
    return ApiError(400, message)


def _label(path: str) -> str:
    return f'"{path}"'


def check_object(value: Any, path: str = "value") -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise fail(f"{_label(path)} must be of type object")
    return value


def reject_unknown(body: Mapping[str, Any], allowed: Sequence[str], prefix: str = "") -> None:
    for key in body:
        if key not in allowed:
            raise fail(f"{_label(prefix + key)} is not allowed")


def get_string(
    body: Mapping[str, Any],
    key: str,
    *,
    path: str | None = None,
    required: bool = False,
    min_len: int | None = None,
    max_len: int | None = None,
    allow_empty: bool = False,
    allow_null: bool = False,
    valid: Sequence[str] | None = None,
    uri: bool = False,
    default: Any = MISSING,
) -> Any:
    """Joi ``string()`` rules; returns the value, ``default`` or MISSING."""
    label = _label(path or key)
    if key not in body:
        if required:
            raise fail(f"{label} is required")
        return default
    value = body[key]
    if value is None:
        if allow_null:
            return None
        raise fail(f"{label} must be a string")
    if valid is not None:
        # Joi checks valid() before the type: any non-listed value says "must be one of"
        if value not in valid:
            raise fail(f"{label} must be one of [{', '.join(valid)}]")
        return value
    if not isinstance(value, str):
        raise fail(f"{label} must be a string")
    if value == "":
        if allow_empty:
            return value
        raise fail(f"{label} is not allowed to be empty")
    if min_len is not None and len(value) < min_len:
        raise fail(f"{label} length must be at least {min_len} characters long")
    if max_len is not None and len(value) > max_len:
        raise fail(f"{label} length must be less than or equal to {max_len} characters long")
    if uri and not _URI.match(value):
        raise fail(f"{label} must be a valid uri")
    return value


#: Joi 17's ``number()`` string coercion pattern (lib/types/number.js, ``numberRx``)
_JOI_NUMBER = re.compile(r"^\s*[+-]?(?:(?:\d+(?:\.\d*)?)|(?:\.\d+))(?:e([+-]?\d+))?\s*$", re.I)


def to_number(value: Any, label: str) -> Decimal:
    if isinstance(value, bool) or value is None:
        raise fail(f"{label} must be a number")
    if isinstance(value, Decimal | int):
        number = Decimal(value)
    elif isinstance(value, float):
        number = Decimal(repr(value))
    elif isinstance(value, str) and value.strip():
        # Joi converts only strings shaped like a decimal number: "Infinity", "NaN", "0x1F"
        # or "1_000" stay strings, and a string is not a number (never "cannot be infinity")
        if not _JOI_NUMBER.match(value):
            raise fail(f"{label} must be a number")
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            raise fail(f"{label} must be a number") from None
    else:
        raise fail(f"{label} must be a number")
    if number.is_nan():
        raise fail(f"{label} must be a number")
    if number.is_infinite():
        raise fail(f"{label} cannot be infinity")
    return number


def get_number(
    body: Mapping[str, Any],
    key: str,
    *,
    path: str | None = None,
    required: bool = False,
    minimum: Decimal | int | None = None,
    positive: bool = False,
    allow_null: bool = False,
    integer: bool = False,
) -> Any:
    """Joi ``number()`` rules; returns a Decimal, None (allowed null) or MISSING."""
    label = _label(path or key)
    if key not in body:
        if required:
            raise fail(f"{label} is required")
        return MISSING
    value = body[key]
    if value is None and allow_null:
        return None
    number = to_number(value, label)
    if integer and number != number.to_integral_value():
        raise fail(f"{label} must be an integer")
    if minimum is not None and number < minimum:
        raise fail(f"{label} must be greater than or equal to {minimum}")
    if positive and number <= 0:
        raise fail(f"{label} must be a positive number")
    return number


def get_boolean(
    body: Mapping[str, Any], key: str, *, path: str | None = None, default: Any = MISSING
) -> Any:
    if key not in body:
        return default
    value = body[key]
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise fail(f"{_label(path or key)} must be a boolean")


def get_object(
    body: Mapping[str, Any],
    key: str,
    parse: Callable[[Mapping[str, Any], str], Any],
    *,
    required: bool = False,
    path: str | None = None,
) -> Any:
    label_path = path or key
    if key not in body:
        if required:
            raise fail(f"{_label(label_path)} is required")
        return MISSING
    value = body[key]
    if not isinstance(value, Mapping):
        raise fail(f"{_label(label_path)} must be of type object")
    return parse(value, label_path)


def get_array(body: Mapping[str, Any], key: str, *, path: str | None = None) -> Any:
    if key not in body:
        return MISSING
    value = body[key]
    if not isinstance(value, list):
        raise fail(f"{_label(path or key)} must be an array")
    return value


# --- shared sub-schemas (unitCosts, caching, modelMetadata) -----------------------------------


def parse_unit_costs(value: Mapping[str, Any], path: str) -> dict[str, Decimal]:
    out = {
        side: get_number(value, side, path=f"{path}.{side}", required=True, minimum=0)
        for side in ("input", "output")
    }
    reject_unknown(value, ("input", "output"), f"{path}.")
    return out


def parse_caching(
    value: Mapping[str, Any], path: str, *, allow_null: bool = False
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for side in ("readRate", "writeRate"):
        number = get_number(value, side, path=f"{path}.{side}", minimum=0, allow_null=allow_null)
        if number is not MISSING:
            out[side] = number
    reject_unknown(value, ("readRate", "writeRate"), f"{path}.")
    return out


_FEATURES = ("tools", "thinking", "vision")


def parse_model_metadata(value: Mapping[str, Any], path: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    max_tokens = get_number(
        value, "maxTokens", path=f"{path}.maxTokens", minimum=1, allow_null=True
    )
    if max_tokens is not MISSING:
        out["maxTokens"] = None if max_tokens is None else _plain_number(max_tokens)
    features = get_array(value, "features", path=f"{path}.features")
    if features is not MISSING:
        for i, item in enumerate(features):
            if item not in _FEATURES:
                raise fail(f'"{path}.features[{i}]" must be one of [{", ".join(_FEATURES)}]')
        out["features"] = list(features)
    image = get_object(value, "imageGeneration", _parse_image_meta, path=f"{path}.imageGeneration")
    if image is not MISSING:
        out["imageGeneration"] = image
    reject_unknown(value, ("maxTokens", "features", "imageGeneration"), f"{path}.")
    return out


def _parse_image_meta(value: Mapping[str, Any], path: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    top = get_number(value, "max", path=f"{path}.max", minimum=1, allow_null=True)
    if top is not MISSING:
        out["max"] = None if top is None else _plain_number(top)
    for key in ("quality", "size", "style"):
        items = get_array(value, key, path=f"{path}.{key}")
        if items is MISSING:
            continue
        for i, item in enumerate(items):
            if not isinstance(item, str):
                raise fail(f'"{path}.{key}[{i}]" must be a string')
        out[key] = list(items)
    reject_unknown(value, ("max", "quality", "size", "style"), f"{path}.")
    return out


def _plain_number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)

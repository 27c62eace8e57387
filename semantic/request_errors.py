"""Request bodies checked by their pydantic model, each error named by the field at fault.

One rule for every analytics request (analyticsQuery, the analyses): ``steps[1].event_type``,
``filters[0].op``, ``(body)`` for the body itself, "unknown field" for a field the model does not
have. The 400 names the first error and lists them all in ``details.errors``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from core.errors import InvalidRequest

Model = TypeVar("Model", bound=BaseModel)

# The member of a union a value failed to be (filters[0].values[1].str) is not a field.
_UNION_MEMBERS = frozenset({"str", "int", "float"})


def field_name(loc: Sequence[int | str]) -> str:
    """('steps', 1, 'event_type') -> 'steps[1].event_type'; () -> '(body)'."""
    name = ""
    for part in loc:
        if part in _UNION_MEMBERS:
            continue
        if isinstance(part, int):
            name += f"[{part}]"
        else:
            name += f".{part}" if name else str(part)
    return name or "(body)"


def error_message(error: Mapping[str, Any]) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown field"
    return str(error["msg"]).removeprefix("Value error, ")


def invalid_request(exc: ValidationError) -> InvalidRequest:
    errors = [
        {"field": field_name(error["loc"]), "message": error_message(error)} for error in exc.errors(include_url=False)
    ]
    first = errors[0]
    return InvalidRequest(f"{first['field']}: {first['message']}", details={"field": first["field"], "errors": errors})


def validate_body(model: type[Model], body: Any, *, what: str = "the request body") -> Model:
    """``body`` as ``model``, or InvalidRequest naming the first bad field."""
    if not isinstance(body, Mapping):
        raise InvalidRequest(f"{what} must be a JSON object", details={"field": "(body)"})
    try:
        return model.model_validate(dict(body))
    except ValidationError as exc:
        raise invalid_request(exc) from exc

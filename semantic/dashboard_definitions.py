"""Dashboard and widget definitions: the bodies REST and GraphQL send, checked before anything is saved.

A body's own fields are checked by pydantic (422 naming the field); each widget's type, config and layout
by semantic/dashboard_widgets.py (400 naming ``widgets[1].config.metrics[0]``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from core.access import Role
from core.errors import FieldError, InvalidRequest, ValidationFailed
from semantic.dashboard_widgets import MAX_TITLE, check_config, check_layout, widget_type
from semantic.report_definitions import _Body
from semantic.saved_queries import Description, KeyId, Name
from storage.dashboards import NewWidget

MAX_WIDGETS = 50
MAX_SHARED = 100
MAX_VERSION = 2**31 - 1
DASHBOARD_FIELDS = (
    "name",
    "description",
    "refresh_interval_seconds",
    "theme",
    "columns",
    "shared_with",
    "shared_with_roles",
    "is_public",
    "widgets",
)


class DashboardCreate(_Body):
    name: Name
    description: Description | None = None
    refresh_interval_seconds: StrictInt = Field(5, ge=1, le=3600)
    theme: Literal["light", "dark"] = "light"
    columns: StrictInt = Field(12, ge=1, le=48)
    shared_with: list[KeyId] = Field(default_factory=list, max_length=MAX_SHARED)
    shared_with_roles: list[Role] = Field(default_factory=list, max_length=len(Role))
    is_public: bool = False
    widgets: list[Any] = Field(default_factory=list, max_length=MAX_WIDGETS)


class DashboardUpdate(_Body):
    """Any of the dashboard's fields; those left out keep their value. ``widgets``, when given, replaces
    the whole list (an item with the ``id`` of one of this dashboard's widgets keeps that widget's id).
    ``version``, when given, is the one read: the change applies only to that version."""

    version: StrictInt | None = Field(None, ge=1, le=MAX_VERSION)
    name: Name | None = None
    description: Description | None = None
    refresh_interval_seconds: StrictInt | None = Field(None, ge=1, le=3600)
    theme: Literal["light", "dark"] | None = None
    columns: StrictInt | None = Field(None, ge=1, le=48)
    shared_with: list[KeyId] | None = Field(None, max_length=MAX_SHARED)
    shared_with_roles: list[Role] | None = Field(None, max_length=len(Role))
    is_public: bool | None = None
    widgets: list[Any] | None = Field(None, max_length=MAX_WIDGETS)

    @classmethod
    def parse(cls, body: Any) -> DashboardUpdate:
        update: DashboardUpdate = super().parse(body)
        if not update.model_fields_set & set(DASHBOARD_FIELDS):
            raise ValidationFailed(
                [
                    FieldError(
                        field="(body)",
                        message="give at least one of " + ", ".join(DASHBOARD_FIELDS),
                        code="missing_field",
                    )
                ]
            )
        for name in ("name", "refresh_interval_seconds", "theme", "columns", "shared_with", "shared_with_roles"):
            if name in update.model_fields_set and getattr(update, name) is None:
                raise ValidationFailed([FieldError(field=name, message="must not be null", code="invalid_value")])
        return update

    def changes(self) -> dict[str, Any]:
        """The dashboard's columns this update sets."""
        return {
            name: getattr(self, name)
            for name in DASHBOARD_FIELDS
            if name != "widgets"
            and name in self.model_fields_set
            and not (name == "is_public" and self.is_public is None)
        }


class WidgetBody(BaseModel):
    """One widget as a body gives it: its type, title, config and place on the grid."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(None, max_length=100)
    dashboard_id: str | None = Field(None, max_length=100)
    widget_type: Any = None
    title: Any = None
    config: Any = None
    layout: Any = None


def parse_widget(
    item: Any, where: str, columns: int, *, current: NewWidget | None = None, require_type: bool = True
) -> NewWidget:
    """A widget of a body, checked (``where`` names it in errors: ``widgets[2]``, or empty for a body
    that is one widget). ``current`` gives the values a partial update keeps."""
    prefix = f"{where}." if where else ""
    if not isinstance(item, dict):
        raise InvalidRequest(f"{where or 'the body'} must be an object", details={"field": where or "(body)"})
    unknown = [name for name in item if name not in WidgetBody.model_fields]
    if unknown:
        raise InvalidRequest(
            f"unknown widget field {str(unknown[0])[:80]!r}; widget_type, title, config, layout",
            details={"field": f"{prefix}{unknown[0]}"},
        )
    type_name = item.get("widget_type", current.widget_type if current else None)
    if type_name is None and require_type:
        raise InvalidRequest("widget_type is required", details={"field": f"{prefix}widget_type"})
    kind = widget_type(type_name, f"{prefix}widget_type")
    title = item.get("title", current.title if current else None) or kind.label
    if not isinstance(title, str) or len(title.strip()) == 0 or len(title) > MAX_TITLE or "\x00" in title:
        raise InvalidRequest(
            f"title must be a text of 1 to {MAX_TITLE} characters", details={"field": f"{prefix}title"}
        )
    if "config" in item or current is None or current.widget_type != kind.name:
        config = item.get("config") if "config" in item else {}
    else:
        config = current.config
    checked = check_config(kind, config if config is not None else {}, f"{prefix}config")
    layout = item.get("layout", current.layout if current else None)
    place = check_layout(layout, columns, f"{prefix}layout", kind.default_layout)
    widget_id = item.get("id") if isinstance(item.get("id"), str) else (current.id if current else None)
    return NewWidget(widget_type=kind.name, title=title.strip(), config=checked, layout=place, id=widget_id)


def parse_widgets(items: list[Any], columns: int) -> tuple[NewWidget, ...]:
    return tuple(parse_widget(item, f"widgets[{index}]", columns) for index, item in enumerate(items))

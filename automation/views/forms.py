"""Forms of the portal's task, schedule and approval pages. They check shape; services decide."""

from __future__ import annotations

import json
import zoneinfo
from datetime import datetime
from typing import Any

from django import forms

from accounts.models import Membership
from automation.executors import executor_names
from automation.models import ExecutionType, MissedRunPolicy, Priority
from automation.services.tasks import TITLE_MAX

LOCAL_DATETIME = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")
DATETIME_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"]
INTERVAL_UNITS = {"minutes": 60, "hours": 3600, "days": 86400}


def priority_choices() -> list[tuple[str, str]]:
    return [(str(p.value), f"{p.label} ({p.value})") for p in Priority]


def member_choices(memberships: list[Membership]) -> list[tuple[str, str]]:
    return [(str(m.user_id), m.user.email) for m in memberships]


def _aware(value: datetime | None, zone_name: str) -> datetime | None:
    """A wall-clock time from a ``datetime-local`` field, read in ``zone_name``."""
    if value is None:
        return None
    zone = zoneinfo.ZoneInfo(zone_name)
    return value.replace(tzinfo=None).replace(tzinfo=zone)


class TaskCreateForm(forms.Form):
    title = forms.CharField(max_length=TITLE_MAX)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    execution_type = forms.ChoiceField(
        choices=ExecutionType.choices, initial=ExecutionType.MANUAL,
        help_text="Manual: a person does it. Semi-automated: runs after someone presses Execute. "
                  "Fully automated: runs as soon as what it waits for is done.",
    )
    executor = forms.ChoiceField(choices=(), initial="noop", help_text="What runs an automated task.")
    priority = forms.TypedChoiceField(coerce=int, choices=priority_choices, initial=str(Priority.NORMAL.value))
    due_at = forms.DateTimeField(
        label="Due", required=False, widget=LOCAL_DATETIME, input_formats=DATETIME_FORMATS,
        help_text="In the organization's time zone.",
    )
    assignee_user = forms.TypedChoiceField(label="Assignee", coerce=int, empty_value=None, required=False, choices=())
    depends_on = forms.CharField(
        label="Waits for", required=False, max_length=500,
        help_text="Task numbers, separated by commas (e.g. 12, 15).",
    )
    parameters = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
        help_text="Executor parameters as a JSON object, e.g. {\"seconds\": 5}; empty for none.",
    )

    def __init__(self, *args: Any, memberships: list[Membership], timezone_name: str, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        self.timezone_name = timezone_name
        self.fields["executor"].choices = [(name, name) for name in executor_names()]  # type: ignore[attr-defined]
        self.fields["assignee_user"].choices = [  # type: ignore[attr-defined]
            ("", "Nobody"), *member_choices(memberships)
        ]

    def clean_depends_on(self) -> list[int]:
        raw = self.cleaned_data.get("depends_on") or ""
        ids: list[int] = []
        for piece in raw.replace(";", ",").split(","):
            piece = piece.strip().lstrip("#")
            if not piece:
                continue
            if not piece.isdigit():
                raise forms.ValidationError(f"{piece!r} is not a task number")
            ids.append(int(piece))
        return ids

    def clean_parameters(self) -> dict[str, Any]:
        text = (self.cleaned_data.get("parameters") or "").strip()
        if not text:
            return {}
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise forms.ValidationError(f"parameters are not valid JSON: {exc}") from exc
        if not isinstance(value, dict):
            raise forms.ValidationError("parameters must be a JSON object, e.g. {\"seconds\": 5}")
        return value

    def clean_due_at(self) -> datetime | None:
        return _aware(self.cleaned_data.get("due_at"), self.timezone_name)


class ReasonForm(forms.Form):
    reason = forms.CharField(max_length=2000, required=False, widget=forms.TextInput())


class RequiredReasonForm(forms.Form):
    reason = forms.CharField(max_length=2000, widget=forms.TextInput())


# --- schedules -------------------------------------------------------------------------------

KIND_TITLES = {
    "cron": "Cron schedule",
    "interval": "Interval schedule",
    "one_off": "One-off schedule",
    "event": "Event schedule",
}


class ScheduleForm(forms.Form):
    """The fields every schedule has: its name, the task it creates and what to do with missed runs."""

    name = forms.CharField(max_length=200)
    task_title = forms.CharField(label="Task title", max_length=300, help_text="The task each run creates.")
    task_description = forms.CharField(label="Task description", required=False,
                                       widget=forms.Textarea(attrs={"rows": 2}))
    task_executor = forms.ChoiceField(label="Executor", choices=(), initial="noop")
    task_execution_type = forms.ChoiceField(label="Execution", choices=ExecutionType.choices,
                                            initial=ExecutionType.FULLY_AUTOMATED)
    task_priority = forms.TypedChoiceField(label="Priority", coerce=int, choices=priority_choices,
                                           initial=str(Priority.NORMAL.value))
    missed_run_policy = forms.ChoiceField(label="Missed runs", choices=MissedRunPolicy.choices,
                                          initial=MissedRunPolicy.RUN_ONCE)
    enabled = forms.BooleanField(required=False, initial=True)

    kind = ""
    aliases: dict[str, str] = {"timezone_name": "timezone"}  # service error field -> form field

    def __init__(self, *args: Any, timezone_name: str = "UTC", **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        self.default_timezone = timezone_name
        self.fields["task_executor"].choices = [(n, n) for n in executor_names()]  # type: ignore[attr-defined]
        if "timezone" in self.fields:
            self.fields["timezone"].initial = timezone_name

    @property
    def title(self) -> str:
        return KIND_TITLES[self.kind]

    def error_field(self, field: str | None) -> str | None:
        """The form field a service error about ``field`` belongs on (None: the whole form)."""
        field = self.aliases.get(field or "", field)
        return field if field in self.fields else None

    def timing_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``schedule_create`` (and ``check_timing``) from the cleaned timing fields."""
        raise NotImplementedError

    def service_kwargs(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "name": data["name"], "kind": self.kind, "task_title": data["task_title"],
            "task_description": data.get("task_description", ""), "task_executor": data["task_executor"],
            "task_execution_type": data["task_execution_type"], "task_priority": data["task_priority"],
            "missed_run_policy": data["missed_run_policy"], "enabled": data.get("enabled", False),
            **self.timing_kwargs(),
        }


class _ZoneMixin(forms.Form):
    timezone = forms.CharField(label="Time zone", max_length=64, help_text="An IANA time zone, e.g. Europe/Berlin.")

    def zone_name(self) -> str:
        return (self.cleaned_data.get("timezone") or "").strip() or "UTC"

    def clean_timezone(self) -> str:
        value = (self.cleaned_data.get("timezone") or "").strip()
        if value and value not in zoneinfo.available_timezones():
            raise forms.ValidationError(f"{value!r} is not an IANA time zone (for example Europe/Berlin)")
        return value


class CronScheduleForm(ScheduleForm, _ZoneMixin):
    kind = "cron"
    cron_expression = forms.CharField(
        label="Cron expression", max_length=120,
        help_text="Five fields: minute hour day-of-month month day-of-week, e.g. 0 9 * * 1-5 (weekdays at 9:00).",
    )
    field_order = ["name", "cron_expression", "timezone"]

    def timing_kwargs(self) -> dict[str, Any]:
        return {"cron_expression": self.cleaned_data["cron_expression"], "timezone_name": self.zone_name()}


class IntervalScheduleForm(ScheduleForm, _ZoneMixin):
    kind = "interval"
    every = forms.IntegerField(label="Every", min_value=1, max_value=100_000)
    unit = forms.ChoiceField(label="Unit", choices=[(u, u) for u in INTERVAL_UNITS], initial="hours")
    first_run = forms.DateTimeField(
        label="First run", required=False, widget=LOCAL_DATETIME, input_formats=DATETIME_FORMATS,
        help_text="Empty: one interval from now. Read in the time zone below.",
    )
    field_order = ["name", "every", "unit", "first_run", "timezone"]
    aliases = {"timezone_name": "timezone", "interval_seconds": "every", "run_at": "first_run"}

    def timing_kwargs(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "interval_seconds": data["every"] * INTERVAL_UNITS[data["unit"]],
            "run_at": _aware(data.get("first_run"), self.zone_name()),
            "timezone_name": self.zone_name(),
        }


class OneOffScheduleForm(ScheduleForm, _ZoneMixin):
    kind = "one_off"
    run_at = forms.DateTimeField(label="Run at", widget=LOCAL_DATETIME, input_formats=DATETIME_FORMATS,
                                 help_text="Read in the time zone below.")
    field_order = ["name", "run_at", "timezone"]

    def timing_kwargs(self) -> dict[str, Any]:
        return {"run_at": _aware(self.cleaned_data["run_at"], self.zone_name()), "timezone_name": self.zone_name()}


class EventScheduleForm(ScheduleForm):
    kind = "event"
    event_name = forms.CharField(
        label="Event name", max_length=100,
        help_text="Lowercase letters, digits and . _ : - (e.g. invoice.paid). The schedule runs each time it fires.",
    )
    field_order = ["name", "event_name"]

    def timing_kwargs(self) -> dict[str, Any]:
        return {"event_name": self.cleaned_data["event_name"]}


SCHEDULE_FORMS: dict[str, type[ScheduleForm]] = {
    "cron": CronScheduleForm,
    "interval": IntervalScheduleForm,
    "one_off": OneOffScheduleForm,
    "event": EventScheduleForm,
}

"""Forms of the account pages. They validate shape; services decide what is allowed."""

from __future__ import annotations

from typing import Any

from django import forms

from accounts.errors import ServiceError
from accounts.roles import Role, Scope


def apply_service_error(form: forms.Form, exc: ServiceError) -> None:
    """Show a refused service call on the form: on its field if the form has one, else on top."""
    field = exc.field if exc.field in form.fields else None
    form.add_error(field, exc.message)


def role_choices(up_to: int | None = None) -> list[tuple[str, str]]:
    """Roles from least to most trusted, optionally capped at ``up_to``."""
    return [(str(r.value), r.label) for r in Role if up_to is None or r.value <= up_to]


class SignUpForm(forms.Form):
    full_name = forms.CharField(
        label="Full name", max_length=200, required=False, widget=forms.TextInput(attrs={"autocomplete": "name"})
    )
    email = forms.EmailField(widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    password = forms.CharField(
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        min_length=8,
        help_text="At least 8 characters; not a common password.",
    )


class OrganizationCreateForm(forms.Form):
    name = forms.CharField(max_length=200, widget=forms.TextInput(attrs={"autocomplete": "organization"}))
    slug = forms.CharField(
        max_length=60,
        required=False,
        help_text="Used in addresses (/orgs/<slug>/). Leave empty to derive it from the name.",
    )
    timezone = forms.CharField(max_length=64, initial="UTC", help_text="An IANA time zone, e.g. Europe/Berlin.")


class InvitationForm(forms.Form):
    email = forms.EmailField(widget=forms.EmailInput(attrs={"autocomplete": "off"}))
    role = forms.TypedChoiceField(coerce=int, choices=role_choices(), initial=str(Role.MEMBER.value))

    def __init__(self, *args: Any, max_role: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["role"].choices = role_choices(max_role)  # type: ignore[attr-defined]


class RoleChangeForm(forms.Form):
    role = forms.TypedChoiceField(coerce=int, choices=role_choices())


class ApiKeyCreateForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What the key is for, e.g. “CI pipeline”.")
    scopes = forms.MultipleChoiceField(
        widget=forms.CheckboxSelectMultiple,
        choices=[(s, s) for s in sorted(Scope.all())],
        help_text="A key never does more than your own role allows.",
    )

    def __init__(self, *args: Any, allowed_scopes: frozenset[str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if allowed_scopes is not None:
            self.fields["scopes"].choices = [(s, s) for s in sorted(allowed_scopes)]  # type: ignore[attr-defined]

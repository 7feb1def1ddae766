"""Helpers shared by the portal pages."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme

from accounts.page_access import OrgAccess


def render_org(
    request: HttpRequest, access: OrgAccess, template: str, context: dict[str, Any], *, status: int = 200
) -> HttpResponse:
    """Render ``template`` with times shown in the organization's time zone."""
    with timezone.override(access.organization.timezone or "UTC"):
        return render(request, template, {"access": access, **context}, status=status)


def safe_next(request: HttpRequest, default: str) -> str:
    """The ``next`` form field if it points inside this site, else ``default``."""
    candidate = request.POST.get("next") or ""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return default


def query_without(request: HttpRequest, *names: str) -> str:
    """The current query string without ``names`` (for pagination links that keep the filters)."""
    query = request.GET.copy()
    for name in names:
        query.pop(name, None)
    return query.urlencode()

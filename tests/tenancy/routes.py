"""Every organization-scoped API route, read from the URL conf."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.urls import URLPattern, URLResolver, get_resolver
from django.utils.regex_helper import normalize
from rest_framework.views import APIView

ORG_KWARG = "org_slug"


@dataclass(frozen=True)
class Route:
    """One URL pattern served by a DRF view, and the methods it answers."""

    pattern: str  # the full regex, for test ids and messages
    url_format: str  # "api/v1/orgs/%(org_slug)s/members/%(pk)s/"
    kwargs: tuple[str, ...]
    view: type[APIView]
    methods: dict[str, str] = field(default_factory=dict)  # HTTP method -> viewset action (or method name)

    @property
    def model(self) -> Any:
        return getattr(self.view, "model", None)

    def url(self, **values: Any) -> str:
        missing = set(self.kwargs) - set(values)
        if missing:
            raise KeyError(f"{self.pattern}: no value for {sorted(missing)}")
        return "/" + self.url_format % {k: values[k] for k in self.kwargs}

    def __str__(self) -> str:
        return f"{self.view.__name__} /{self.url_format}"


def _piece(pattern: Any) -> str:
    regex = pattern.regex.pattern
    regex = regex.removeprefix("^")
    for end in ("\\Z", "$"):
        regex = regex.removesuffix(end)
    return regex


def _walk(patterns: list[Any], prefix: str) -> Any:
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, prefix + _piece(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + _piece(entry.pattern), entry


def _methods(callback: Any, view: type[APIView]) -> dict[str, str]:
    actions: dict[str, str] | None = getattr(callback, "actions", None)
    if actions is not None:  # a viewset bound to {method: action}
        methods = {m.upper(): a for m, a in actions.items()}
    else:
        methods = {m.upper(): m for m in view.http_method_names if m != "options" and hasattr(view, m)}
    if "GET" in methods:
        methods.setdefault("HEAD", methods["GET"])
    methods["OPTIONS"] = "options"
    return methods


def org_scoped_api_routes() -> list[Route]:
    """Every DRF route of the URL conf whose pattern names ``org_slug``."""
    routes = []
    for regex, entry in _walk(get_resolver().url_patterns, ""):
        if f"(?P<{ORG_KWARG}>" not in regex:
            continue
        view = getattr(entry.callback, "cls", None)
        if view is None or not issubclass(view, APIView):
            continue  # a page, not the API
        candidates = normalize(regex)
        url_format, params = candidates[0]
        routes.append(
            Route(
                pattern=regex,
                url_format=url_format,
                kwargs=tuple(params),
                view=view,
                methods=_methods(entry.callback, view),
            )
        )
    return routes

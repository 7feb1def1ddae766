"""Rows of the *other* organization, for the cross-organization route walker.

``tests/tenancy/test_cross_org_routes.py`` visits every API route whose URL holds
``org_slug`` (found in the URL conf, so new routes are covered with no edit
there) as a member of organization A, with organization B's slug and ids, and
expects 404 and no change anywhere in the database.

For a detail route (``{pk}``) it needs a row of organization B of the view's
``model``. It FAILS LOUDLY when no factory is registered for that model. To
cover a model of your app, add a module named ``tenancy_factories.py`` anywhere
under ``tests/`` (for instance ``tests/tools/tenancy_factories.py``); every such
module is imported automatically::

    from tests.tenancy.registry import register, register_payload, register_url_kwarg

    @register(Tool)
    def make_tool(tenant):                 # tenant: tests.conftest.Tenant (organization B)
        return ToolFactory(organization=tenant.organization)

    # Optional: a valid request body for an action, so that a route which forgot
    # to scope its lookup would really write something (and the check sees it).
    register_payload(Tool, "partial_update", lambda tenant: {"name": "renamed"})

    # Optional: a URL kwarg other than org_slug and pk, filled with the pk of
    # organization B's row of the given model (e.g. nested routes).
    register_url_kwarg("tool_pk", Tool)

A factory runs inside ``org_scope(tenant.organization)``, so plain factory_boy
factories using the default manager work. It must return a saved row that
belongs to ``tenant.organization``.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.db import models

from accounts.tenancy import org_scope

Factory = Callable[[Any], models.Model]
Payload = Callable[[Any], dict[str, Any]]

FACTORIES: dict[type[models.Model], Factory] = {}
PAYLOADS: dict[tuple[type[models.Model] | None, str], Payload] = {}
URL_KWARGS: dict[str, type[models.Model]] = {}

_discovered = False


def register(model: type[models.Model]) -> Callable[[Factory], Factory]:
    """Register ``factory(tenant) -> row of tenant.organization`` for ``model``."""

    def decorate(factory: Factory) -> Factory:
        if model in FACTORIES and FACTORIES[model] is not factory:
            raise ValueError(f"a tenancy factory for {model.__name__} is already registered")
        FACTORIES[model] = factory
        return factory

    return decorate


def register_payload(model: type[models.Model] | None, action: str, payload: Payload) -> None:
    """A request body for ``action`` of the views of ``model`` (``None``: views without a model)."""
    PAYLOADS[(model, action)] = payload


def register_url_kwarg(name: str, model: type[models.Model]) -> None:
    """Fill the URL kwarg ``name`` with the pk of the other organization's row of ``model``."""
    URL_KWARGS[name] = model


def discover() -> None:
    """Import every ``tenancy_factories`` module under ``tests/``."""
    global _discovered
    if _discovered:
        return
    root = Path(__file__).resolve().parent.parent
    for info in pkgutil.walk_packages([str(root)], prefix="tests."):
        if info.name.rsplit(".", 1)[-1] == "tenancy_factories":
            importlib.import_module(info.name)
    _discovered = True


def make_row(model: type[models.Model], tenant: Any) -> models.Model:
    """A saved row of ``model`` in ``tenant``'s organization, or a loud failure."""
    discover()
    factory = FACTORIES.get(model)
    if factory is None:
        raise LookupError(
            f"No tenancy factory for {model._meta.label}: an org-scoped route serves it, so the cross-organization "
            f"walker needs a row of the other organization. Register one in a tests/<app>/tenancy_factories.py "
            f"(see tests/tenancy/registry.py)."
        )
    with org_scope(tenant.organization):
        row = factory(tenant)
    if getattr(row, "organization_id", tenant.organization.pk) != tenant.organization.pk:
        raise AssertionError(f"the tenancy factory for {model._meta.label} made a row of another organization")
    return row


def payload_for(model: type[models.Model] | None, action: str, tenant: Any) -> dict[str, Any]:
    discover()
    payload = PAYLOADS.get((model, action))
    return payload(tenant) if payload else {}

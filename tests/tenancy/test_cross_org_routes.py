"""Every organization-scoped API route refuses the other organization's slug and ids.

The routes come from the URL conf (every DRF route whose pattern names
``org_slug``), so routes added by any app are walked with no edit here. A
detail route needs a row of the other organization of its view's ``model``:
register a factory for it as explained in ``tests/tenancy/registry.py``;
without one the walk fails on purpose.

For each route and each HTTP method it answers, as a member of organization A
(by session, and with an API key of A carrying every scope of its owner):

* B's slug (and B's ids) -> 404, and nothing in the database changed;
* A's slug with B's ids (detail routes) -> 404, and nothing changed.

"Nothing changed" compares, for every model, the row count and a hash of all
rows, read through its ``_base_manager`` (which sees all organizations),
before and after.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import pytest
from django.apps import apps
from django.db import connection, models

from accounts.api.base import OrgScopedMixin
from accounts.models import ApiKey, Membership, Organization, User
from accounts.roles import Role
from tests.accounts.factories import key_header, make_api_key
from tests.tenancy.registry import URL_KWARGS, discover, make_row, payload_for
from tests.tenancy.routes import ORG_KWARG, Route, org_scoped_api_routes

ROUTES = org_scoped_api_routes()

# Fields that a request may legitimately touch on the caller's own rows.
VOLATILE_FIELDS: dict[type[models.Model], set[str]] = {
    ApiKey: {"last_used_at"},
    User: {"last_login"},
}
SKIPPED_MODELS = {"sessions.session"}


@functools.cache
def _fingerprint_query() -> tuple[str, tuple[Any, ...]]:
    """One SQL statement: per model, its row count and a hash of all its rows (built from its _base_manager)."""
    tables = set(connection.introspection.table_names())  # a model with no migration yet: test_migrations catches it
    parts, params = [], []
    for model in apps.get_models():
        meta = model._meta
        if meta.proxy or not meta.managed or meta.label_lower in SKIPPED_MODELS or meta.db_table not in tables:
            continue
        names = [f.attname for f in meta.concrete_fields if f.name not in VOLATILE_FIELDS.get(model, set())]
        sql, query_params = model._base_manager.values_list(*names).order_by().query.sql_with_params()
        parts.append(
            "SELECT %s AS label, count(*) AS n, md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) AS h "
            f"FROM ({sql}) AS t"
        )
        params.extend([meta.label_lower, *query_params])
    return " UNION ALL ".join(parts), tuple(params)


def snapshot() -> dict[str, tuple[int, str]]:
    """Every model's row count and a hash of every row's concrete field values."""
    sql, params = _fingerprint_query()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {label: (n, digest) for label, n, digest in cursor.fetchall()}


def diff(before: dict[str, tuple[int, str]], after: dict[str, tuple[int, str]]) -> dict[str, str]:
    changed = {}
    for label in before.keys() | after.keys():
        old, new = before.get(label), after.get(label)
        if old != new:
            changed[label] = f"{old[0] if old else 0} rows -> {new[0] if new else 0} rows (content changed)"
    return changed


def _cases() -> list[Any]:
    cases = []
    for route in ROUTES:
        for method, action in sorted(route.methods.items()):
            cases.append(pytest.param(route, method, action, id=f"{method}-/{route.url_format}"))
    return cases


def test_routes_are_discovered():
    """The walker finds the accounts routes (so an empty walk cannot pass silently)."""
    formats = {route.url_format for route in ROUTES}
    assert "api/v1/orgs/%(org_slug)s/" in formats
    assert "api/v1/orgs/%(org_slug)s/members/%(pk)s/" in formats
    assert "api/v1/orgs/%(org_slug)s/api-keys/%(pk)s/revoke/" in formats


def test_snapshot_sees_updates_inserts_and_deletes(tenants):
    """The side-effect check notices a changed field, a new row and a deleted row, in any organization."""
    _a, b = tenants
    before = snapshot()
    Membership.objects.for_org(b.organization).filter(user=b.member).update(role=Role.VIEWER)
    assert set(diff(before, snapshot())) == {"accounts.membership"}
    before = snapshot()
    make_api_key(b.organization, b.owner)
    assert "accounts.apikey" in diff(before, snapshot())
    before = snapshot()
    Organization.objects.filter(pk=b.organization.pk).update(name="Renamed")
    assert set(diff(before, snapshot())) == {"accounts.organization"}
    before = snapshot()
    ApiKey.objects.for_org(b.organization).delete()
    assert set(diff(before, snapshot())) == {"accounts.apikey"}


@pytest.mark.parametrize("route", [pytest.param(r, id=f"/{r.url_format}") for r in ROUTES])
def test_org_scoped_route_uses_the_org_scoped_base(route: Route):
    """Every API view under /orgs/{org_slug}/ resolves the organization through OrgScopedMixin."""
    assert issubclass(route.view, OrgScopedMixin), f"{route}: subclass OrgScopedViewSet (or OrgScopedMixin)"


def _values_for(route: Route, tenant: Any) -> tuple[dict[str, Any], Any]:
    """URL kwargs pointing at ``tenant``'s rows, and the model of the route."""
    discover()  # every app's tenancy_factories registers its URL kwargs
    values: dict[str, Any] = {ORG_KWARG: tenant.slug}
    model = route.model
    for name in route.kwargs:
        if name == ORG_KWARG:
            continue
        if name in URL_KWARGS:
            values[name] = make_row(URL_KWARGS[name], tenant).pk
        elif name in ("pk", "id"):
            if model is None:
                pytest.fail(f"{route}: a detail route whose view has no `model`; set `model` on the view")
            values[name] = make_row(model, tenant).pk
        else:
            pytest.fail(
                f"{route}: unknown URL kwarg {name!r}; register it with register_url_kwarg() "
                "(see tests/tenancy/registry.py)"
            )
    return values, model


@pytest.mark.parametrize(("route", "method", "action"), _cases())
def test_other_organization_is_404_without_side_effect(route, method, action, tenants, client_for):
    """A member of A gets 404, and changes nothing, on B's slug and ids, for every route and method."""
    a, b = tenants
    _key, secret = make_api_key(a.organization, a.owner)
    callers = [("session", client_for(a.owner), {})]
    key_client = client_for(a.owner)
    key_client.logout()
    callers.append(("API key", key_client, key_header(secret)))
    # Use the key once first, so that stamping its last use is not counted as a change.
    assert key_client.get(f"/api/v1/orgs/{a.slug}/", **key_header(secret)).status_code == 200

    b_values, model = _values_for(route, b)
    attempts = [("B's slug and ids", b_values)]
    if len(route.kwargs) > 1 and method != "OPTIONS":
        attempts.append(("A's slug with B's ids", {**b_values, ORG_KWARG: a.slug}))
    body = json.dumps(payload_for(model, action, a)) if method not in ("GET", "HEAD", "OPTIONS") else None

    for caller, client, headers in callers:
        for label, values in attempts:
            url = route.url(**values)
            where = f"{method} {url} ({label}, by {caller})"
            before = snapshot()
            response = client.generic(method, url, data=body or "", content_type="application/json", **headers)
            after = snapshot()
            assert response.status_code == 404, f"{where}: {response.status_code} {response.content[:300]!r}"
            assert diff(before, after) == {}, f"{where} changed the database: {diff(before, after)}"
            if method != "HEAD":
                assert str(b.organization.name) not in response.content.decode(), f"{where} leaked B's name"

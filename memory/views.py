"""The "Business Memory" portal page: totals, categories, search, edit, conflicts, export, forget and clear.

Every view goes through :func:`accounts.page_access.org_page`; writes call one
service each and report refusals as messages, never as server errors.
"""

from __future__ import annotations

from datetime import datetime

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.views.decorators.http import require_GET, require_POST

from accounts.errors import ServiceError
from accounts.page_access import OrgAccess, org_page
from accounts.roles import Scope
from memory import retrieval
from memory.models import Category, Conflict, ConflictStatus, Fact, FactStatus
from memory.selectors import memory_analytics
from memory.services import commands, conflicts, facts
from memory.services.settings import memory_settings_get

PAGE_SIZE = 50


def _back(access: OrgAccess) -> HttpResponse:
    return redirect("memory-page", org_slug=access.organization.slug)


@org_page(Scope.MEMORY_READ)
@require_GET
def memory_page(request: HttpRequest, access: OrgAccess) -> HttpResponse:
    organization = access.organization
    query = (request.GET.get("q") or "").strip()[:500]
    category = request.GET.get("category") or ""
    category = category if category in Category.values else ""
    at_text = (request.GET.get("at") or "").strip()
    at_date = parse_date(at_text) if at_text else None
    at = datetime(at_date.year, at_date.month, at_date.day, 12) if at_date else None
    hits: list[retrieval.Hit] = []
    if query:
        hits = retrieval.search(
            organization=organization, query=query, categories=[category] if category else None,
            at=timezone.make_aware(at) if at else None, limit=20,
        )
    listing = Fact.objects.for_org(organization).filter(status=FactStatus.ACTIVE).select_related("subject")
    if category:
        listing = listing.filter(category=category)
    stats = memory_analytics(organization=organization)
    context = {
        "access": access,
        "section": "memory-page",
        "stats": stats,
        "category_counts": [(value, label, stats["by_category"][value]) for value, label in Category.choices],
        "settings": memory_settings_get(organization=organization),
        "categories": Category.choices,
        "query": query,
        "category": category,
        "at": at_text,
        "hits": hits,
        "facts": list(listing.order_by("-updated_at", "-id")[:PAGE_SIZE]),
        "conflicts": list(
            Conflict.objects.for_org(organization).filter(status=ConflictStatus.PENDING)
            .select_related("existing_fact", "proposed_fact").order_by("-created_at")[:20]
        ),
        "can_write": access.can(Scope.MEMORY_WRITE),
        "can_clear_all": access.can(Scope.ORG_WRITE),
    }
    return render(request, "memory/memory.html", context)


@org_page(Scope.MEMORY_READ, unsafe_scope=Scope.MEMORY_WRITE)
@require_POST
def memory_fact_edit(request: HttpRequest, access: OrgAccess, pk: int) -> HttpResponse:
    fact = get_object_or_404(Fact.objects.for_org(access.organization), pk=pk)
    try:
        facts.fact_update(organization=access.organization, fact=fact, actor=request.user,  # type: ignore[arg-type]
                          text=request.POST.get("text", ""))
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Updated; the earlier version is kept in the history.")
    return _back(access)


@org_page(Scope.MEMORY_READ, unsafe_scope=Scope.MEMORY_WRITE)
@require_POST
def memory_fact_delete(request: HttpRequest, access: OrgAccess, pk: int) -> HttpResponse:
    fact = get_object_or_404(Fact.objects.for_org(access.organization), pk=pk)
    facts.fact_delete(organization=access.organization, fact=fact, actor=request.user)  # type: ignore[arg-type]
    messages.success(request, "Deleted for good.")
    return _back(access)


@org_page(Scope.MEMORY_READ, unsafe_scope=Scope.MEMORY_WRITE)
@require_POST
def memory_conflict_resolve(request: HttpRequest, access: OrgAccess, pk: int) -> HttpResponse:
    conflict = get_object_or_404(Conflict.objects.for_org(access.organization), pk=pk)
    try:
        conflicts.conflict_resolve(organization=access.organization, conflict=conflict,
                                   resolution=request.POST.get("resolution", ""), actor=request.user)  # type: ignore[arg-type]
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Thanks, memory is up to date.")
    return _back(access)


@org_page(Scope.MEMORY_READ, unsafe_scope=Scope.MEMORY_WRITE)
@require_POST
def memory_forget(request: HttpRequest, access: OrgAccess) -> HttpResponse:
    try:
        report = commands.memory_forget_topic(organization=access.organization, topic=request.POST.get("topic", ""),
                                              actor=request.user)  # type: ignore[arg-type]
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Forgot {report.facts} facts, {report.messages} messages and "
                                  f"{report.entities} entities.")
    return _back(access)


@org_page(Scope.MEMORY_READ, unsafe_scope=Scope.MEMORY_WRITE)
@require_POST
def memory_clear(request: HttpRequest, access: OrgAccess) -> HttpResponse:
    if request.POST.get("scope") == "all":
        access.require(Scope.ORG_WRITE)
        report = commands.memory_clear_all(organization=access.organization, actor=request.user)  # type: ignore[arg-type]
    else:
        report = commands.memory_clear_my_data(organization=access.organization, user=request.user,  # type: ignore[arg-type]
                                               actor=request.user)  # type: ignore[arg-type]
    messages.success(request, f"Cleared {report.facts} facts and {report.messages} messages.")
    return _back(access)

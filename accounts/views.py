"""Server-rendered account pages. Logic lives in services; pages validate, call one, and answer.

Organization pages go through :func:`accounts.page_access.org_page`. A refused
service call (``ServiceError``) is shown on the form with the error's status
code, never as a server error.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.context_processors import organizations
from accounts.errors import ServiceError
from accounts.forms import (
    ApiKeyCreateForm,
    InvitationForm,
    OrganizationCreateForm,
    RoleChangeForm,
    SignUpForm,
    apply_service_error,
    role_choices,
)
from accounts.models import ApiKey, Invitation, Membership
from accounts.page_access import SESSION_KEY, OrgAccess, org_page
from accounts.roles import Role, Scope
from accounts.selectors import organization_for_member
from accounts.services import api_keys as api_key_services
from accounts.services import invitations as invitation_services
from accounts.services import members as member_services
from accounts.services.organizations import organization_create
from accounts.services.users import user_sign_up


def _safe_next(request: HttpRequest, default: str = "") -> str:
    """The ``next`` parameter if it points inside this site, else ``default``."""
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return default


# --- Sign up, log in, log out ---------------------------------------------------------


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    redirect_authenticated_user = True


class LogoutView(auth_views.LogoutView):
    pass


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect(_safe_next(request) or reverse("home"))
    initial = {"email": request.GET.get("email", "")}
    form = SignUpForm(request.POST or None, initial=initial)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                user = user_sign_up(**form.cleaned_data)
            except ServiceError as exc:
                apply_service_error(form, exc)
                status = exc.status_code
            else:
                login(request, user, backend="django.contrib.auth.backends.ModelBackend")
                return redirect(_safe_next(request) or reverse("home"))
        else:
            status = 400
    return render(request, "accounts/signup.html", {"form": form, "next": _safe_next(request)}, status=status)


# --- Home, organizations, switcher -------------------------------------------------------


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """The current organization's overview, or a start page for a user with none."""
    current = organizations(request).get("current_organization")
    if current is not None:
        return redirect("org-home", org_slug=current.slug)
    return render(request, "accounts/home.html")


@org_page()
@require_GET
def org_home(request: HttpRequest, access: OrgAccess) -> HttpResponse:
    counts = Membership.objects.for_org(access.organization).aggregate(
        members=Count("pk"), admins=Count("pk", filter=Q(role__gte=Role.ADMIN))
    )
    return render(request, "accounts/org_home.html", {"access": access, "counts": counts})


@login_required
@require_http_methods(["GET", "POST"])
def organization_new(request: HttpRequest) -> HttpResponse:
    form = OrganizationCreateForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                organization = organization_create(user=request.user, **form.cleaned_data)  # type: ignore[arg-type]
            except ServiceError as exc:
                apply_service_error(form, exc)
                status = exc.status_code
            else:
                request.session[SESSION_KEY] = organization.slug
                messages.success(request, f"Created {organization.name}. You are its owner.")
                return redirect("org-home", org_slug=organization.slug)
        else:
            status = 400
    return render(request, "accounts/organization_new.html", {"form": form}, status=status)


@login_required
@require_POST
def organization_switch(request: HttpRequest) -> HttpResponse:
    """Make another of the caller's organizations the current one (404 for any other slug)."""
    found = organization_for_member(user=request.user, slug=request.POST.get("organization", ""))  # type: ignore[arg-type]
    if found is None:
        raise Http404("No such organization.")
    organization, _membership = found
    request.session[SESSION_KEY] = organization.slug
    return redirect("org-home", org_slug=organization.slug)


# --- Members and invitations ---------------------------------------------------------------


def _members_page(
    request: HttpRequest,
    access: OrgAccess,
    *,
    invite_form: InvitationForm | None = None,
    row_errors: dict[int, str] | None = None,
    status: int = 200,
) -> HttpResponse:
    organization = access.organization
    can_manage = access.can(Scope.MEMBERS_MANAGE)
    memberships = list(Membership.objects.for_org(organization).select_related("user").order_by("-role", "user__email"))
    row_errors = row_errors or {}
    rows = [
        {
            "membership": m,
            "role": Role(m.role),
            "is_self": m.user_id == request.user.pk,
            # Only roles up to the caller's own can be granted or changed (the service re-checks).
            "editable": can_manage and m.role <= access.membership.role,
            "error": row_errors.get(m.pk, ""),
        }
        for m in memberships
    ]
    context = {
        "access": access,
        "rows": rows,
        "can_manage": can_manage,
        "grantable_roles": role_choices(access.membership.role),
    }
    if can_manage:
        context["invite_form"] = invite_form or InvitationForm(max_role=access.membership.role)
        context["invitations"] = (
            Invitation.objects.for_org(organization)
            .filter(accepted_at__isnull=True, revoked_at__isnull=True)
            .select_related("invited_by")
            .order_by("-created_at")
        )
    return render(request, "accounts/members.html", context, status=status)


@org_page(Scope.MEMBERS_READ)
@require_GET
def members(request: HttpRequest, access: OrgAccess) -> HttpResponse:
    return _members_page(request, access)


@never_cache
@org_page(Scope.MEMBERS_READ, unsafe_scope=Scope.MEMBERS_MANAGE)
@require_POST
def member_invite(request: HttpRequest, access: OrgAccess) -> HttpResponse:
    form = InvitationForm(request.POST, max_role=access.membership.role)
    if not form.is_valid():
        return _members_page(request, access, invite_form=form, status=400)
    try:
        issued = invitation_services.invitation_create(
            organization=access.organization, actor=request.user, **form.cleaned_data  # type: ignore[arg-type]
        )
    except ServiceError as exc:
        apply_service_error(form, exc)
        return _members_page(request, access, invite_form=form, status=exc.status_code)
    context = {
        "access": access,
        "invitation": issued.invitation,
        "role": Role(issued.invitation.role),
        "accept_url": request.build_absolute_uri(issued.accept_path),
    }
    return render(request, "accounts/invitation_sent.html", context)


@org_page(Scope.MEMBERS_READ, unsafe_scope=Scope.MEMBERS_MANAGE)
@require_POST
def member_role(request: HttpRequest, access: OrgAccess, pk: int) -> HttpResponse:
    membership = get_object_or_404(Membership.objects.for_org(access.organization).select_related("user"), pk=pk)
    form = RoleChangeForm(request.POST)
    if not form.is_valid():
        return _members_page(request, access, row_errors={pk: "Choose a valid role."}, status=400)
    try:
        member_services.membership_change_role(
            membership=membership, actor=request.user, role=form.cleaned_data["role"]  # type: ignore[arg-type]
        )
    except ServiceError as exc:
        return _members_page(request, access, row_errors={pk: exc.message}, status=exc.status_code)
    messages.success(request, f"{membership.user.email} is now {Role(form.cleaned_data['role']).label}.")
    return redirect("members", org_slug=access.organization.slug)


@org_page(Scope.MEMBERS_READ)
@require_http_methods(["GET", "POST"])
def member_remove(request: HttpRequest, access: OrgAccess, pk: int) -> HttpResponse:
    """Confirm (GET) and remove (POST) a member; anyone may remove themselves (leave)."""
    membership = get_object_or_404(Membership.objects.for_org(access.organization).select_related("user"), pk=pk)
    is_self = membership.user_id == request.user.pk
    if not is_self:
        access.require(Scope.MEMBERS_MANAGE)
    context = {"access": access, "target": membership, "role": Role(membership.role), "is_self": is_self}
    if request.method == "GET":
        return render(request, "accounts/member_remove.html", context)
    try:
        member_services.membership_remove(membership=membership, actor=request.user)  # type: ignore[arg-type]
    except ServiceError as exc:
        context["error"] = exc.message
        return render(request, "accounts/member_remove.html", context, status=exc.status_code)
    if is_self:
        request.session.pop(SESSION_KEY, None)
        messages.success(request, f"You left {access.organization.name}.")
        return redirect("home")
    messages.success(request, f"Removed {membership.user.email}.")
    return redirect("members", org_slug=access.organization.slug)


@org_page(Scope.MEMBERS_MANAGE)
@require_POST
def invitation_revoke(request: HttpRequest, access: OrgAccess, pk: int) -> HttpResponse:
    invitation = get_object_or_404(Invitation.objects.for_org(access.organization), pk=pk)
    try:
        invitation_services.invitation_revoke(invitation=invitation, actor=request.user)  # type: ignore[arg-type]
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Revoked the invitation of {invitation.email}.")
    return redirect("members", org_slug=access.organization.slug)


@never_cache
@require_http_methods(["GET", "POST"])
def invitation_accept(request: HttpRequest, token: str) -> HttpResponse:
    """Show an invitation (GET) and accept it as the logged-in user (POST)."""
    if request.method == "POST" and not request.user.is_authenticated:
        return HttpResponseRedirect(f"{reverse('login')}?{urlencode({'next': request.path})}")
    try:
        invitation = invitation_services.invitation_lookup(token=token)
    except ServiceError as exc:
        return render(request, "accounts/invitation_invalid.html", {"message": exc.message}, status=exc.status_code)
    context = {
        "invitation": invitation,
        "organization": invitation.organization,
        "role": Role(invitation.role),
        "next_query": urlencode({"next": request.path}),
        "signup_query": urlencode({"next": request.path, "email": invitation.email}),
        "wrong_user": request.user.is_authenticated and request.user.email.lower() != invitation.email.lower(),
    }
    if request.method == "GET":
        return render(request, "accounts/invitation_accept.html", context)
    try:
        membership = invitation_services.invitation_accept(token=token, user=request.user)  # type: ignore[arg-type]
    except ServiceError as exc:
        context["error"] = exc.message
        return render(request, "accounts/invitation_accept.html", context, status=exc.status_code)
    organization = invitation.organization
    request.session[SESSION_KEY] = organization.slug
    messages.success(request, f"Welcome to {organization.name}: you joined as {Role(membership.role).label}.")
    return redirect("org-home", org_slug=organization.slug)


# --- API keys ------------------------------------------------------------------------------------


def _api_keys_page(
    request: HttpRequest, access: OrgAccess, *, form: ApiKeyCreateForm | None = None, status: int = 200
) -> HttpResponse:
    keys = ApiKey.objects.for_org(access.organization).select_related("created_by").order_by("-created_at")
    context = {
        "access": access,
        "keys": keys,
        "form": form or ApiKeyCreateForm(allowed_scopes=access.scopes),
    }
    return render(request, "accounts/api_keys.html", context, status=status)


@never_cache
@org_page(Scope.API_KEYS_MANAGE)
@require_http_methods(["GET", "POST"])
def api_keys(request: HttpRequest, access: OrgAccess) -> HttpResponse:
    """List and create keys. The secret appears once, in the answer to the create request.

    SECURITY: the secret is never stored (only its hash) and never put in the session or
    a message; the answer carries ``Cache-Control: no-store``.
    """
    if request.method == "GET":
        return _api_keys_page(request, access)
    form = ApiKeyCreateForm(request.POST, allowed_scopes=access.scopes)
    if not form.is_valid():
        return _api_keys_page(request, access, form=form, status=400)
    try:
        issued = api_key_services.api_key_create(
            organization=access.organization, actor=request.user, **form.cleaned_data  # type: ignore[arg-type]
        )
    except ServiceError as exc:
        apply_service_error(form, exc)
        return _api_keys_page(request, access, form=form, status=exc.status_code)
    return render(request, "accounts/api_key_created.html", {"access": access, "key": issued.api_key,
                                                              "secret": issued.secret})


@org_page(Scope.API_KEYS_MANAGE)
@require_POST
def api_key_revoke(request: HttpRequest, access: OrgAccess, pk: int) -> HttpResponse:
    api_key = get_object_or_404(ApiKey.objects.for_org(access.organization), pk=pk)
    try:
        api_key_services.api_key_revoke(api_key=api_key, actor=request.user)  # type: ignore[arg-type]
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Revoked the key “{api_key.name}”. It stops working at once.")
    return redirect("api-keys", org_slug=access.organization.slug)

"""Server-rendered account pages. Logic lives in services."""

from __future__ import annotations

from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    redirect_authenticated_user = True


class LogoutView(auth_views.LogoutView):
    pass


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/home.html")


def signup(request: HttpRequest) -> HttpResponse:
    from accounts.errors import ServiceError
    from accounts.forms import SignUpForm
    from accounts.services.users import user_sign_up

    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = user_sign_up(**form.cleaned_data)
        except ServiceError as exc:
            form.add_error(exc.field, exc.message)
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            return redirect("home")
    return render(request, "accounts/signup.html", {"form": form})


@login_required
def invitation_accept(request: HttpRequest, token: str) -> HttpResponse:
    return HttpResponse("invitation")

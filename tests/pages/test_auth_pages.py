from __future__ import annotations

from accounts.models import User
from tests.factories import PASSWORD


def test_sign_up_logs_in_and_offers_to_create_an_organization(db, client):
    """Signing up creates the account, logs it in and lands on a page offering a new organization."""
    response = client.post(
        "/signup/", {"full_name": "Maria Lopez", "email": "Maria@Example.test", "password": "a-long-passphrase"}
    )
    assert response.status_code == 302
    assert response["Location"] == "/"
    user = User.objects.get(email="maria@example.test")
    assert user.check_password("a-long-passphrase")
    page = client.get("/")
    assert page.status_code == 200
    assert b"You do not belong to an organization yet" in page.content
    assert b'href="/orgs/new/"' in page.content


def test_sign_up_with_a_taken_email_shows_a_form_error(tenant_a, client):
    """A refused sign-up (email taken) is a form error with status 409, not a server error."""
    response = client.post("/signup/", {"email": tenant_a.owner.email, "password": "a-long-passphrase"})
    assert response.status_code == 409
    assert b"already exists" in response.content
    assert "_auth_user_id" not in client.session


def test_sign_up_with_a_common_password_shows_a_form_error(db, client):
    """Password validation problems come back on the password field."""
    response = client.post("/signup/", {"email": "new@example.test", "password": "password"})
    assert response.status_code == 400
    assert b"too common" in response.content
    assert not User.objects.filter(email="new@example.test").exists()


def test_sign_up_follows_a_safe_next_only(db, client):
    """After sign-up the user returns to a local ``next``; an outside address is ignored."""
    response = client.post(
        "/signup/", {"email": "a@example.test", "password": "a-long-passphrase", "next": "/invitations/abc/"}
    )
    assert response["Location"] == "/invitations/abc/"
    client.logout()
    response = client.post(
        "/signup/", {"email": "b@example.test", "password": "a-long-passphrase", "next": "https://evil.test/"}
    )
    assert response["Location"] == "/"


def test_log_in_lands_on_the_current_organization_and_log_out_ends_the_session(tenant_a, client):
    """Logging in shows the organization's overview; logging out (POST) ends the session."""
    response = client.post("/login/", {"username": tenant_a.owner.email, "password": PASSWORD}, follow=True)
    assert response.status_code == 200
    assert response.redirect_chain[-1][0] == f"/orgs/{tenant_a.slug}/"
    assert tenant_a.organization.name.encode() in response.content
    assert client.get("/logout/").status_code == 405  # logging out needs a POST (CSRF-protected)
    response = client.post("/logout/")
    assert response.status_code == 302
    assert "_auth_user_id" not in client.session
    assert client.get("/").status_code == 302


def test_wrong_password_is_refused_with_a_message(tenant_a, client):
    """A wrong password keeps the user on the login page with an error."""
    response = client.post("/login/", {"username": tenant_a.owner.email, "password": "nope-nope-nope"})
    assert response.status_code == 200
    assert b'role="alert"' in response.content
    assert "_auth_user_id" not in client.session


def test_organization_pages_send_anonymous_visitors_to_log_in(tenant_a, client):
    """A logged-out visitor of an organization page is sent to log in and brought back."""
    response = client.get(f"/orgs/{tenant_a.slug}/members/")
    assert response.status_code == 302
    assert response["Location"] == f"/login/?next=/orgs/{tenant_a.slug}/members/"


def test_create_organization_makes_the_user_owner(db, page_for):
    """The new-organization form creates it with the user as owner and makes it current."""
    from tests.factories import UserFactory

    user = UserFactory()
    client = page_for(user)
    response = client.post("/orgs/new/", {"name": "Lopez Bakery", "slug": "", "timezone": "Europe/Madrid"})
    assert response.status_code == 302
    assert response["Location"] == "/orgs/lopez-bakery/"
    assert client.session["current_org"] == "lopez-bakery"
    page = client.get("/orgs/lopez-bakery/")
    assert b"Lopez Bakery" in page.content
    assert b"<strong>Owner</strong>" in page.content


def test_create_organization_with_a_taken_slug_or_bad_time_zone_shows_form_errors(tenant_a, page_for):
    """Service refusals while creating an organization are field errors, never a 500."""
    client = page_for(tenant_a.viewer)
    response = client.post("/orgs/new/", {"name": "Copy", "slug": tenant_a.slug, "timezone": "UTC"})
    assert response.status_code == 409
    assert b"is taken" in response.content
    response = client.post("/orgs/new/", {"name": "Copy", "slug": "copy", "timezone": "Mars/Base"})
    assert response.status_code == 400
    assert b"IANA" in response.content

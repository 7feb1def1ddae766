"""The demo login works in a real browser: log in, see the organization, its members, switch, log out."""

from __future__ import annotations

import io
import os
import re
import shutil
from pathlib import Path

import pytest
from django.core.management import call_command


@pytest.fixture(autouse=True)
def _allow_sync_orm_beside_playwright(monkeypatch):
    """Playwright's sync API runs an event loop in this thread; the ORM calls here are still synchronous."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not shutil.which(CHROMIUM), reason="needs Debian's chromium"),
]


@pytest.fixture
def demo(transactional_db):
    """The seeded demo organization, plus a second organization of the demo owner."""
    from accounts.models import User
    from accounts.services.organizations import organization_create

    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    printed = out.getvalue()
    logins = re.findall(r"(\S+@demo\.staffer\.local)\s+password: (\S+)", printed)
    assert len(logins) == 5, printed
    owner = User.objects.get(email="owner@demo.staffer.local")
    organization_create(user=owner, name="Demo Second Co", slug="demo-second", timezone="UTC")
    return dict(logins)


@pytest.fixture
def browser(tmp_path):
    from playwright.sync_api import sync_playwright

    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS, env=env)
        yield browser
        browser.close()


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"demo-{name}.png"), full_page=True)


def test_demo_owner_logs_in_sees_members_switches_and_logs_out(demo, live_server, browser):
    """The demo owner logs in, sees Acme Demo and its five members, makes an API key, switches, logs out."""
    from playwright.sync_api import expect

    password = demo["owner@demo.staffer.local"]
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.set_default_timeout(15_000)

    page.goto(f"{live_server.url}/")
    expect(page).to_have_url(re.compile(r"/login/"))
    expect(page.get_by_label("Email")).to_be_focused()
    page.keyboard.type("owner@demo.staffer.local")
    page.keyboard.press("Tab")
    expect(page.get_by_label("Password")).to_be_focused()
    page.keyboard.type(password)
    _shot(page, "1-login")
    page.keyboard.press("Enter")  # the keyboard alone logs in

    expect(page).to_have_url(f"{live_server.url}/orgs/demo/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Acme Demo")
    expect(page.get_by_label("Current organization")).to_have_value("demo")
    expect(page.get_by_role("link", name="Admin")).to_be_visible()  # the demo owner is staff
    _shot(page, "2-home")
    page.keyboard.press("Tab")
    expect(page.locator(":focus")).to_have_text("Skip to content")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Members").click()
    expect(page).to_have_url(f"{live_server.url}/orgs/demo/members/")
    rows = page.locator("table").first.locator("tbody tr")
    expect(rows).to_have_count(5)
    for email in demo:
        expect(rows.filter(has_text=email)).to_have_count(1)
    expect(page.get_by_role("heading", name="Invite someone")).to_be_visible()
    _shot(page, "3-members")

    # On a phone the page fits the screen width.
    page.set_viewport_size({"width": 375, "height": 740})
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    _shot(page, "4-members-phone")
    page.set_viewport_size({"width": 1280, "height": 800})

    page.get_by_role("navigation", name="Main").get_by_role("link", name="API keys").click()
    page.get_by_label("Name").fill("Browser test")
    page.get_by_label("tasks:read").check()
    page.get_by_role("button", name="Create key").click()
    secret = page.get_by_label("Secret").input_value()
    assert secret.startswith("stf_")
    _shot(page, "5-api-key-created")
    page.get_by_role("link", name="Back to API keys").click()
    expect(page.get_by_role("cell", name="Browser test", exact=True)).to_be_visible()
    assert secret not in page.content()
    _shot(page, "6-api-keys")

    page.get_by_label("Current organization").select_option("demo-second")
    page.get_by_role("button", name="Switch").click()
    expect(page).to_have_url(f"{live_server.url}/orgs/demo-second/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Demo Second Co")
    expect(page.get_by_label("Current organization")).to_have_value("demo-second")
    _shot(page, "7-switched")

    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/login/$"))
    page.goto(f"{live_server.url}/orgs/demo/members/")
    expect(page).to_have_url(re.compile(r"/login/\?next="))
    _shot(page, "8-logged-out")

from __future__ import annotations

import os

import pytest
from django.test import Client


@pytest.fixture
def page_for():
    """A Django test client logged in (by session) as the given user."""

    def make(user, *, enforce_csrf_checks: bool = False) -> Client:
        client = Client(enforce_csrf_checks=enforce_csrf_checks)
        client.force_login(user)
        return client

    return make


@pytest.fixture
def browser(tmp_path, monkeypatch):
    """Debian's chromium, headless, through Playwright's sync API."""
    from playwright.sync_api import sync_playwright

    from tests.portal.browser_support import CHROMIUM, LAUNCH_ARGS

    # The sync API runs an event loop in this thread and the tests call the ORM beside it. Set for these
    # tests only: the variable must not leak into other tests' subprocesses (``check --deploy`` refuses it).
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS, env=env)
        yield browser
        browser.close()

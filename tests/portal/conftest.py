from __future__ import annotations

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

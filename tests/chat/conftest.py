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


@pytest.fixture
def clean_layer():
    """Stale group members of crashed runs survive in Redis: start and end with an empty channel layer."""
    from asgiref.sync import async_to_sync
    from channels.layers import channel_layers

    def flush() -> None:
        layer = channel_layers.make_backend("default")  # its own connections, on this call's event loop
        async_to_sync(layer.flush)()

    flush()
    yield
    flush()

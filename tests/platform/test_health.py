import pytest

from config import heartbeat


def test_healthz_answers_without_dependencies(client):
    """Liveness answers 200 with a JSON body."""
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_fails_without_a_worker(client, settings):
    """Readiness is 503 and names the failed check when no worker heartbeat is present."""
    import redis

    client_redis = redis.Redis.from_url(settings.REDIS.app_url())
    for key in client_redis.scan_iter(f"{heartbeat.KEY_PREFIX}*"):
        client_redis.delete(key)
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["redis"]["status"] == "ok"
    assert body["checks"]["worker"]["status"] == "fail"
    assert "no Celery worker heartbeat" in body["checks"]["worker"]["detail"]


@pytest.mark.worker
def test_readyz_ready_with_a_live_worker(transactional_db, celery_worker, client, settings):
    """With a real worker running, every readiness check passes (once its next heartbeat lands: an earlier test
    may have just deleted the heartbeats)."""
    import time

    deadline = time.monotonic() + 3 * settings.WORKER_HEARTBEAT_SECONDS
    response = client.get("/readyz")
    while response.status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.5)
        response = client.get("/readyz")
    assert response.status_code == 200, response.json()
    assert {c["status"] for c in response.json()["checks"].values()} == {"ok"}

import pytest

from accounts.tasks import ping

pytestmark = [pytest.mark.worker]


def test_real_worker_completes_a_task(transactional_db, celery_worker):
    """A task sent through the embedded Redis is executed by a real worker process."""
    result = ping.delay(41)
    assert result.get(timeout=30) == 42

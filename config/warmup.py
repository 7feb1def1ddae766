"""Warm a worker process's heavy libraries in the background as soon as it starts.

Loading the embedding model (torch, sentence-transformers) takes ~14 s of CPU
and importing LiteLLM a few more; without a warm-up the first chat plan or
memory search a worker child takes pays for it. Each prefork child (and a solo
or threads worker's one process) runs ``WORKER_WARMUPS`` — dotted paths of
functions without arguments — in a daemon thread after it starts, so the child
accepts work at once; a task that needs the model meanwhile waits on the
model's own lock for the same load instead of starting a second one. A failing
warm-up is logged and ignored: the library then loads on first use as before.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from django.conf import settings
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)


def run_warmups(paths: list[str]) -> None:
    for path in paths:
        started = time.monotonic()
        try:
            import_string(path)()
        except Exception:
            logger.exception("worker warm-up %s failed; it will load on first use", path)
        else:
            logger.info("worker warm-up %s done in %.1f s", path, time.monotonic() - started)


def on_worker_process_init(**kwargs: Any) -> None:
    paths = [p for p in getattr(settings, "WORKER_WARMUPS", []) or [] if p]
    if paths:
        threading.Thread(target=run_warmups, args=(paths,), name="staffer-warmup", daemon=True).start()

"""``python -m config.servers start|stop|status|wipe`` for the embedded servers."""

from __future__ import annotations

import sys
from pathlib import Path

from config import embedded

BASE_DIR = Path(__file__).resolve().parent.parent


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "status"
    root = embedded.var_dir(BASE_DIR)
    if command == "start":
        print(embedded.postgres_url(root))
        print(f"unix://{embedded.redis_start(root)}")
    elif command == "stop":
        print("redis:", "stopped" if embedded.redis_stop(root) else "not running")
        print("postgres:", "stopped" if embedded.postgres_stop(root) else "not running")
    elif command == "wipe":
        embedded.wipe(root)
        print("embedded data deleted")
    else:
        pg = (root / "pg" / "postmaster.pid").exists()
        print("postgres:", "running" if pg else "stopped")
        print("redis:", "running" if embedded._redis_alive(embedded.redis_socket(root)) else "stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

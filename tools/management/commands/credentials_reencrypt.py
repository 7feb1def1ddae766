"""Re-encrypt integration credentials under the primary key of STAFFER_CREDENTIAL_KEYS."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tools.crypto import generate_key_spec
from tools.services.credentials import credentials_reencrypt


class Command(BaseCommand):
    help = (
        "Re-encrypt every credential not under the primary (first) key of STAFFER_CREDENTIAL_KEYS. "
        "Rotate by putting a new key first, keeping the old ones listed, running this, then dropping the old keys."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--all", action="store_true", help="Re-encrypt every row, even those under the primary.")
        parser.add_argument("--new-key", metavar="KEY_ID", help="Print a fresh key entry for the setting and exit.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["new_key"]:
            self.stdout.write(generate_key_spec(options["new_key"]))
            return
        result = credentials_reencrypt(all_rows=options["all"])
        self.stdout.write(f"re-encrypted {result.reencrypted}, already current {result.already_current}")
        if result.failed:
            raise CommandError(f"{len(result.failed)} credentials did not decrypt with any configured key: "
                               f"{', '.join(map(str, result.failed))}")

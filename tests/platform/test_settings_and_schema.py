"""Production settings, the OpenAPI schema, code quality and migrations, checked as CI would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_ENV = {
    "SECRET_KEY": "x" * 30 + "-production-secret-for-the-check-0123456789",
    "ALLOWED_HOSTS": "staffer.example.com",
    "REDIS_URL": "redis://127.0.0.1:6390/0",
    "STAFFER_CREDENTIAL_KEYS": "k1:" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY=",
}


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180
    )


def _production_env(**overrides: str) -> dict[str, str]:
    settings_dict = connection.settings_dict
    database_url = f"postgres://{settings_dict['USER']}@/{settings_dict['NAME']}?host={settings_dict['HOST']}"
    dropped = {"SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "REDIS_URL", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    env.update({"DJANGO_SETTINGS_MODULE": "config.settings.production", "DATABASE_URL": database_url, **PRODUCTION_ENV})
    env.update(overrides)
    return {k: v for k, v in env.items() if v != ""}


@pytest.mark.django_db
@pytest.mark.parametrize("missing", ["SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "REDIS_URL",
                                     "STAFFER_CREDENTIAL_KEYS"])
def test_production_refuses_to_start_without(missing):
    """Production settings refuse to load when a required variable is unset."""
    result = _manage("check", env=_production_env(**{missing: ""}))
    assert result.returncode != 0
    assert f"Set the {missing} environment variable" in result.stderr


@pytest.mark.django_db
def test_production_refuses_a_malformed_credential_key():
    """A key that is not 32 bytes of base64 stops `check` (and so `migrate`) with the reason, before any use."""
    result = _manage("check", env=_production_env(STAFFER_CREDENTIAL_KEYS="k1:dG9vLXNob3J0"))
    assert result.returncode != 0
    assert "tools.E001" in result.stderr
    assert "must be 32 bytes (AES-256), not 9" in result.stderr


@pytest.mark.django_db
def test_production_deploy_check_is_clean():
    """`manage.py check --deploy` reports nothing with production settings."""
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=_production_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_openapi_schema_builds_without_warnings(tmp_path):
    """The OpenAPI schema generates and validates with no warnings."""
    out = tmp_path / "schema.yml"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"}
    result = _manage("spectacular", "--fail-on-warn", "--validate", "--file", str(out), env=env)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "/api/v1/orgs/{org_slug}/members/" in out.read_text()


def test_no_missing_migrations():
    """Every model change has its migration."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"}
    result = _manage("makemigrations", "--check", "--dry-run", env=env)
    assert result.returncode == 0, result.stdout + result.stderr


def test_layers_contract_holds():
    """Apps import downward only: agents > automation > tools > memory > accounts."""
    result = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"],
        cwd=ROOT, capture_output=True, text=True, timeout=180,
    )
    assert result.returncode == 0, result.stdout[-4000:]


def test_ruff_is_clean():
    """The code base passes the project's ruff rules."""
    result = subprocess.run(
        [str(Path(sys.executable).parent / "ruff"), "check", "."], cwd=ROOT, capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, result.stdout[-4000:]

"""List the LLM routes (tier → deployments, role → tier) and check each deployment's health.

    python manage.py llm_routes                 # the platform's routes, with health checks
    python manage.py llm_routes --org acme      # as organization "acme" sees them (overrides, on-prem pinning)
    python manage.py llm_routes --no-check      # routes only
    python manage.py llm_routes --timeout 2     # seconds per health check (default LLM_HEALTH_TIMEOUT_SECONDS)

Exits with status 1 when a deployment fails its check.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import Organization
from agents.llm import conf
from agents.llm.health import check_deployments
from agents.llm.routing import OrgLLMConfig, org_config


class Command(BaseCommand):
    help = "List the LLM routes and check each deployment's health (a one-token call with a short timeout)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--org", help="Show the routes of this organization (its slug).")
        parser.add_argument("--no-check", action="store_true", help="Do not call the deployments.")
        parser.add_argument("--timeout", type=float, default=None, help="Seconds per health check.")

    def handle(self, *args: Any, **options: Any) -> None:
        config = self._config(options.get("org"))
        self._print_routes(config)
        if options["no_check"]:
            return
        used = [spec for name, spec in config.deployments.items()
                if any(name in names for names in config.tiers.values())]
        self.stdout.write("\nHealth (one-token call):")
        results = check_deployments(used, timeout=options["timeout"])
        width = max((len(r.deployment) for r in results), default=10)
        for result in results:
            status = self.style.SUCCESS("ok  ") if result.ok else self.style.ERROR("FAIL")
            line = f"  {result.deployment:<{width}}  {status}  {result.latency_ms:>6} ms"
            self.stdout.write(line + (f"  {result.error}" if result.error else ""))
        failed = [r.deployment for r in results if not r.ok]
        if failed:
            raise CommandError(f"{len(failed)} of {len(results)} deployments failed: {', '.join(failed)}")

    def _config(self, slug: str | None) -> OrgLLMConfig:
        if not slug:
            return org_config(None)
        organization = Organization.objects.filter(slug=slug).first()
        if organization is None:
            raise CommandError(f"no organization with the slug {slug!r}")
        self.stdout.write(f"Organization: {organization.name} ({organization.slug})")
        return org_config(organization)

    def _print_routes(self, config: OrgLLMConfig) -> None:
        if config.scripted_only:
            self.stdout.write("No model is configured: the offline scripted model answers every tier.")
        self.stdout.write(f"On-prem only: {'yes' if config.on_prem_only else 'no'}    "
                          f"Hybrid (local first): {'yes' if config.hybrid else 'no'}")
        if config.excluded:
            self.stdout.write(f"Excluded by on-prem pinning: {', '.join(config.excluded)}")
        self.stdout.write("\nDeployments:")
        width = max(len(n) for n in config.deployments)
        for name, spec in config.deployments.items():
            where = f"  {spec.api_base}" if spec.api_base else ""
            self.stdout.write(f"  {name:<{width}}  {spec.locality:<8}  {spec.model}{where}  [{spec.origin}]")
        self.stdout.write("\nTiers (tried in this order; hybrid mode puts local first):")
        for tier, names in config.tiers.items():
            self.stdout.write(f"  {tier:<9} → {', '.join(names) if names else '(none)'}")
        self.stdout.write("\nRoles:")
        for role, tier in conf.role_tiers().items():
            self.stdout.write(f"  {role:<10} → {tier}")

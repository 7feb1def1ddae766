"""Integrations with real providers' APIs (base URLs are operator configuration)."""

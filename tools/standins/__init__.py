"""Local stand-ins for third-party providers, for development and the offline demo.

A stand-in answers a provider's documented API contract on a local port so
that the real integration client (same code, same credential handling, same
tool path) has something to talk to where the provider cannot be reached.
They are never started in production (``STAFFER_DEMO_HRIS`` is forced off
there), and what they hold is plainly labelled as demo data.
"""

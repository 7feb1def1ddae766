"""The AI workforce: the Manager plans, Employees execute steps with tools, the Supervisor reviews.

Registered as the automation engine's ``ai`` executor (``agents.loop.executor``).
"""

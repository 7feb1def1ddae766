"""Notifications: in-app (the bell, pushed live) and email, per-user preferences, daily digest.

Rows are :class:`automation.models.Notification` (shared with reminders);
what creates them is here: a TaskEvent listener (assignment, failure,
dependencies, mentions), and system jobs (approvals requested, due soon,
weekly summary, email delivery and the daily digest). A dedupe key unique
per user means one event never notifies twice.
"""

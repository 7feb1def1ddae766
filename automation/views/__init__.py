"""Server-rendered portal pages of the automation app: tasks, workflow graphs, schedules, approvals.

Every page goes through :func:`accounts.page_access.org_page`; writes go through
the app's services, reads through its selectors.
"""

"""Email in: mail to an organization's inbound address becomes a task.

Mail arrives through the built-in SMTP receiver (``manage.py smtp_receiver``)
or a provider's inbound webhook (django-anymail: Mailgun, SendGrid,
Postmark). Either way the raw message is first written to the spool
(:mod:`automation.email_in.spool`, fsynced), then processed by
:func:`automation.email_in.processing.spool_process_entry`; a message whose
processing fails (the database is down) stays spooled and is processed
later, so accepted mail is never lost.

Layout: ``addresses`` (no database), ``parsing`` and ``html_text`` (raw mail
to text, attachments, verdicts), ``hooks`` and ``rules`` (metadata
extraction: registered extractors, else the deterministic parser),
``services`` (the decisions), ``spool`` and ``processing``, ``smtp`` (the
receiver), ``webhooks`` (anymail), ``api``/``urls``/``admin``, ``tasks``
(Celery and system jobs), ``wiring`` (connected at start).
"""

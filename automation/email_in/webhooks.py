"""Providers' inbound webhooks through django-anymail: Mailgun, SendGrid and Postmark.

Anymail's inbound views check each provider's webhook authentication
(HTTP basic auth with ``WEBHOOK_SECRET`` for all three when it is set, put
in the webhook URL as ``https://user:password@host/...``; Mailgun's HMAC
signature with ``MAILGUN_WEBHOOK_SIGNING_KEY`` as well; both from the
``ANYMAIL`` setting) and parse the payload into an inbound message, sent
with the ``anymail.signals.inbound`` signal; :func:`on_inbound` spools it
and processes it like mail received over SMTP.

The views here wrap anymail's so that every bad call gets a clear 4xx:
401 for failed authentication, 400 for a payload that does not parse or a
message without headers or From, 406 when no recipient is an inbound
address of an organization (Mailgun stops retrying on 406), 413 for a
message over the size limit; 503 while the webhook's secret is not
configured (anymail alone would accept unauthenticated SendGrid and
Postmark calls), and 503 if the spool cannot be written (the provider
retries). A quarantined message is accepted (200).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from email.utils import getaddresses
from typing import Any

from anymail.exceptions import AnymailNotSupportedWarning, AnymailWebhookValidationFailure
from anymail.signals import AnymailInboundEvent, inbound
from anymail.utils import get_anymail_setting
from anymail.webhooks.mailgun import MailgunInboundWebhookView
from anymail.webhooks.postmark import PostmarkInboundWebhookView
from anymail.webhooks.sendgrid import SendGridInboundWebhookView
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from automation.email_in import conf
from automation.email_in.addresses import bare_address, is_our_domain
from automation.email_in.parsing import parse_message
from automation.email_in.processing import UNAVAILABLE, envelope, spool_process_entry
from automation.email_in.services import resolve_recipient
from automation.email_in.spool import Spool
from automation.models import InboundChannel

logger = logging.getLogger(__name__)

CHANNELS = {"Mailgun": InboundChannel.MAILGUN, "SendGrid": InboundChannel.SENDGRID,
            "Postmark": InboundChannel.POSTMARK}


class InboundRefused(Exception):
    """The webhook call is refused with ``status`` (4xx/5xx), a code and a reason."""

    def __init__(self, status: int, code: str, reason: str) -> None:
        super().__init__(reason)
        self.status, self.code, self.reason = status, code, reason


def _refusal(status: int, code: str, detail: str) -> JsonResponse:
    return JsonResponse({"detail": detail, "code": code}, status=status)


class _InboundMixin:
    """Anymail's handling, with each failure answered by its own status instead of a 500."""

    esp_name: str
    signal: Any
    run_validators: Callable[[HttpRequest], None]
    parse_events: Callable[[HttpRequest], list[AnymailInboundEvent]]

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            self.run_validators(request)
        except AnymailWebhookValidationFailure as exc:
            return _refusal(401, "bad_signature", str(exc))
        try:
            events = self.parse_events(request)
        except Exception as exc:  # anything anymail raises on a payload it cannot read
            logger.warning("%s inbound payload refused", self.esp_name, exc_info=True)
            return _refusal(400, "bad_payload", f"not a {self.esp_name} inbound payload: {type(exc).__name__}: {exc}")
        try:
            for event in events:
                self.signal.send(sender=self.__class__, event=event, esp_name=self.esp_name)
        except InboundRefused as exc:
            return _refusal(exc.status, exc.code, exc.reason)
        return HttpResponse()


class MailgunInbound(_InboundMixin, MailgunInboundWebhookView):
    pass


class SendGridInbound(_InboundMixin, SendGridInboundWebhookView):
    """Anymail 15 no longer tests SendGrid itself (it warns); its inbound parsing is used, and tested, here."""

    def __init__(self, **kwargs: Any) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AnymailNotSupportedWarning)
            super().__init__(**kwargs)


class PostmarkInbound(_InboundMixin, PostmarkInboundWebhookView):
    pass


def _setting(name: str, esp_name: str | None = None) -> str:
    return str(get_anymail_setting(name, esp_name=esp_name, default="") or "")


def _guarded(view_class: type, configured: Callable[[], bool], what: str) -> Callable[..., HttpResponse]:
    inner = view_class.as_view()

    @csrf_exempt
    def view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not configured():
            return _refusal(503, "not_configured", f"this inbound webhook is off until {what} is set")
        return inner(request, *args, **kwargs)

    return view


mailgun_inbound = _guarded(MailgunInbound, lambda: bool(_setting("webhook_signing_key", "Mailgun")),
                           "ANYMAIL['MAILGUN_WEBHOOK_SIGNING_KEY']")
sendgrid_inbound = _guarded(SendGridInbound, lambda: bool(_setting("webhook_secret")), "ANYMAIL['WEBHOOK_SECRET']")
postmark_inbound = _guarded(PostmarkInbound, lambda: bool(_setting("webhook_secret")), "ANYMAIL['WEBHOOK_SECRET']")


# --- the signal receiver ----------------------------------------------------------------------


def _provider_verdicts(event: AnymailInboundEvent, esp_name: str) -> dict[str, str]:
    verdicts: dict[str, str] = {}
    message = event.message
    if getattr(message, "spam_detected", None):
        verdicts["spam"] = "yes"
    if esp_name == "SendGrid":
        post = getattr(event.esp_event, "POST", {})
        for field, key in (("SPF", "spf"), ("dkim", "dkim")):
            value = str(post.get(field, "") or "").lower()
            if "fail" in value:
                verdicts[key] = "fail"
            elif "pass" in value:
                verdicts[key] = "pass"
    return verdicts


def _recipients(message: Any) -> list[str]:
    """Our inbound addresses the message is for: the envelope recipient, else its address headers."""
    envelope_recipient = bare_address(str(getattr(message, "envelope_recipient", None) or ""))
    if envelope_recipient and is_our_domain(envelope_recipient):
        return [envelope_recipient]  # the provider says whom it is for
    found: list[str] = []
    for header in ("To", "Cc", "Delivered-To", "X-Original-To"):
        values = [str(v) for v in message.get_all(header, None) or []]
        found += [address for _, address in getaddresses(values)]
    addresses = [bare_address(a) for a in found]
    return list(dict.fromkeys(a for a in addresses if a and is_our_domain(a)))


def _known(addresses: list[str]) -> list[str]:
    try:
        return [a for a in addresses if resolve_recipient(a) is not None]
    except UNAVAILABLE:
        return addresses  # checked when the spool is processed


def on_inbound(sender: Any, event: AnymailInboundEvent, esp_name: str, **kwargs: Any) -> None:
    """Spool an inbound message from a provider, then process it (connected to ``anymail.signals.inbound``)."""
    channel = CHANNELS.get(esp_name)
    if channel is None:
        return
    message = event.message
    try:
        raw = message.as_bytes()
    except Exception as exc:  # a message anymail built but cannot serialize
        raise InboundRefused(400, "bad_payload", f"the message cannot be read: {type(exc).__name__}") from exc
    if len(raw) > conf.smtp_max_bytes():
        raise InboundRefused(413, "too_large", f"the message has {len(raw)} bytes; at most {conf.smtp_max_bytes()}")
    recipients = _known(_recipients(message))
    if not recipients:
        raise InboundRefused(406, "no_recipient", f"no recipient is an inbound address at {conf.domain()}")
    problem = parse_message(raw).fatal
    if problem:
        raise InboundRefused(400, "malformed", problem)
    spool = Spool()
    try:
        name = spool.write(raw, envelope(
            channel=channel, mail_from=getattr(message, "envelope_sender", None), recipients=recipients,
            provider_verdicts=_provider_verdicts(event, esp_name), received_at=event.timestamp,
        ))
    except OSError as exc:
        logger.exception("could not spool a %s inbound message", esp_name)
        raise InboundRefused(503, "unavailable", "the message could not be stored; try again later") from exc
    spool_process_entry(spool, name)


def connect() -> None:
    """Connect :func:`on_inbound` (called from ``AutomationConfig.ready()`` through the wiring module)."""
    inbound.connect(on_inbound, dispatch_uid="automation.email_in.on_inbound")

"""Rows of the other organization for the cross-organization route walker."""

from automation.email_in.parsing import parse_message
from automation.email_in.services import inbound_receive, resolve_recipient
from automation.models import InboundMessage
from tests.email_in.conftest import as_wire, make_mail
from tests.tenancy.registry import register


@register(InboundMessage)
def _quarantined(tenant):
    """A quarantined message (an unknown sender) in the tenant's organization."""
    from automation.email_in import conf

    address = f"tasks+{tenant.slug}@{conf.domain()}"
    raw = as_wire(make_mail(sender="stranger@elsewhere.test", to=address, subject="Other organization's mail"))
    recipient = resolve_recipient(address)
    outcome = inbound_receive(recipient=recipient, mail=parse_message(raw), raw=raw, channel="smtp")
    return outcome.message

"""Reading raw mail without a database: text, charsets, HTML, attachments, and the signs that quarantine it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from automation.email_in.addresses import parse_address
from automation.email_in.hooks import Candidate, ExtractionRequest
from automation.email_in.html_text import html_to_text
from automation.email_in.parsing import parse_message, safe_filename
from automation.email_in.rules import extract_by_rules
from automation.email_in.services import reply_text, task_title


def raw(headers: str, body: str = "Hello") -> bytes:
    return (headers.strip() + "\n\n" + body).replace("\n", "\r\n").encode("latin-1")


def test_html_body_becomes_plain_text_without_markup():
    """An HTML-only mail becomes readable text; scripts, styles and tags do not survive."""
    html = ("<html><head><style>p{color:red}</style><script>alert(1)</script></head><body>"
            "<p>Hi&nbsp;team,</p><p>Please <b>order</b> <a href='https://shop.test/a4'>paper</a>.</p>"
            "<ul><li>A4</li><li>A3</li></ul><img src=x onerror=alert(2) alt='logo'></body></html>")
    text = html_to_text(html)
    assert "<" not in text
    assert "alert" not in text
    assert "color" not in text
    assert "Please order paper (https://shop.test/a4)." in text
    assert "- A4" in text
    assert "[logo]" in text


def test_wrong_and_unknown_charsets_do_not_crash():
    """An unknown charset falls back to UTF-8; Latin-1 bytes declared UTF-8 still read (cp1252 fallback)."""
    unknown = parse_message(raw("From: a@x.test\nSubject: s\nContent-Type: text/plain; charset=klingon",
                                "caf\u00e9"))
    assert unknown.text.startswith("caf")
    assert not unknown.fatal
    mislabeled = parse_message(raw("From: a@x.test\nSubject: s\nContent-Type: text/plain; charset=utf-8",
                                   "na\u00efve caf\u00e9"))
    assert mislabeled.text == "na\u00efve caf\u00e9"


def test_garbled_headers_are_read_leniently():
    """A broken encoded-word and stray bytes in headers do not stop the message."""
    mail = parse_message(b"From: =?utf-8?q?Bro=ken?= <a@x.test>\r\nSubject: =?bogus?b?!!!?= \xff\xfe ok\r\n"
                         b"Message-ID: not-bracketed@x\r\n\r\nbody")
    assert mail.from_address == "a@x.test"
    assert mail.message_id == "<not-bracketed@x>"
    assert not mail.fatal


def test_message_without_headers_or_from_is_fatal():
    """No headers, or no From address: the message cannot be processed at all."""
    assert parse_message(b"just some bytes").fatal == "the message has no headers"
    assert parse_message(raw("Subject: hi")).fatal == "the message has no valid From address"


def test_structural_mime_damage_is_malformed():
    """A multipart message whose boundary never appears is reported as malformed MIME."""
    mail = parse_message(raw('From: a@x.test\nSubject: s\nContent-Type: multipart/mixed; boundary="zz"',
                             "no parts here"))
    assert mail.malformed.startswith("malformed MIME")


def test_message_id_missing_gets_a_stable_synthetic_one():
    """Without a Message-ID the same bytes get the same id (so a resend is still a duplicate)."""
    data = raw("From: a@x.test\nSubject: s")
    assert parse_message(data).message_id == parse_message(data).message_id
    assert not parse_message(data).has_message_id


@pytest.mark.parametrize(("headers", "expected"), [
    ("Auto-Submitted: auto-replied", "auto_reply"),
    ("X-Autoreply: yes", "auto_reply"),
    ("Precedence: bulk", "auto_reply"),
    ("Auto-Submitted: no", None),
])
def test_auto_replies_are_recognised(headers, expected):
    """Auto-Submitted (not "no"), X-Autoreply and Precedence: bulk mark an automatic reply."""
    mail = parse_message(raw(f"From: a@x.test\nSubject: s\n{headers}"))
    assert bool(mail.auto_reply) == (expected == "auto_reply")


def test_bounces_are_recognised():
    """A delivery status report, a null envelope sender or MAILER-DAEMON is a bounce."""
    report = parse_message(raw('From: a@x.test\nSubject: s\nContent-Type: multipart/report; '
                               'report-type=delivery-status; boundary="b"',
                               '--b\nContent-Type: text/plain\n\nfailed\n--b\n'
                               'Content-Type: message/delivery-status\n\nStatus: 5.1.1\n--b--'))
    assert report.bounce
    assert parse_message(raw("From: a@x.test\nSubject: s"), envelope_sender="").bounce
    assert parse_message(raw("From: MAILER-DAEMON@mx.test\nSubject: s")).bounce
    assert not parse_message(raw("From: a@x.test\nSubject: s"), envelope_sender="a@x.test").bounce


def test_authentication_verdicts_are_read():
    """Failures in Authentication-Results, Received-SPF or Mailgun's headers are reported; a pass is not a failure."""
    mail = parse_message(raw("From: a@x.test\nSubject: s\n"
                             "Authentication-Results: mx.test; spf=pass smtp.mailfrom=x.test; dkim=fail; dmarc=fail"))
    assert mail.failed_verdicts == {"dkim": "fail", "dmarc": "fail"}
    assert parse_message(raw("From: a@x.test\nSubject: s\nReceived-SPF: Fail (mx.test)")).failed_verdicts == {
        "spf": "fail"}
    assert parse_message(raw("From: a@x.test\nSubject: s\nX-Mailgun-Spf: Pass")).failed_verdicts == {}


def test_attachment_names_are_made_safe():
    """Folders, control characters and leading dots are stripped from attachment names."""
    assert safe_filename("../../etc/passwd", "text/plain") == "passwd"
    assert safe_filename("C:\\Users\\x\\.bashrc\x07", "text/plain") == "bashrc"
    assert safe_filename("", "application/pdf") == "attachment.pdf"
    assert len(safe_filename("a" * 300 + ".pdf", "application/pdf")) <= 150


def test_forwarded_message_is_one_attachment():
    """A forwarded message (message/rfc822) is kept whole, not split into its parts."""
    inner = "From: boss@x.test\nSubject: Budget\n\nThe budget.\n"
    data = raw('From: a@x.test\nSubject: Fwd: Budget\nContent-Type: multipart/mixed; boundary="b"',
               f'--b\nContent-Type: text/plain\n\nSee below.\n--b\nContent-Type: message/rfc822\n\n{inner}\n--b--')
    mail = parse_message(data)
    assert mail.text == "See below."
    assert [(a.filename, a.content_type) for a in mail.attachments] == [("Budget.eml", "message/rfc822")]


def test_inbound_addresses_parse():
    """tasks+<slug>@domain and tasks+<slug>.<token>@domain are ours; anything else is not."""
    assert parse_address("Tasks+Acme@INBOUND.TEST").slug == "acme"
    parts = parse_address("<tasks+acme.k3j9x2abcd@inbound.test>")
    assert (parts.slug, parts.token) == ("acme", "k3j9x2abcd")
    assert parse_address("tasks+acme@elsewhere.test") is None
    assert parse_address("sales@inbound.test") is None
    assert parse_address("tasks+../x@inbound.test") is None


def _request(text: str, members=()) -> ExtractionRequest:
    return ExtractionRequest(organization_id=1, organization_slug="acme", timezone="Europe/Berlin",
                             sender_email="a@x.test", subject="", text=text,
                             received_at=datetime(2026, 11, 18, 9, 0, tzinfo=UTC),  # a Wednesday
                             members=tuple(members))


def test_rules_read_dates_priority_and_assignee_with_confidence():
    """The deterministic parser finds the due date, priority and assignee, each with a confidence."""
    members = [Candidate(1, "maria@acme.test", "Maria Lopez"), Candidate(2, "bob@acme.test", "Bob Stone")]
    meta = extract_by_rules(_request("Urgent: please send the report by Friday. Assign to Maria.", members))
    assert meta.due_at.isoformat() == "2026-11-20T17:00:00+01:00"
    assert meta.priority == 100
    assert meta.assignee == "maria@acme.test"
    assert meta.field_confidence == {"due_at": 0.8, "priority": 0.9, "assignee": 0.7}
    assert meta.confidence == 0.7
    assert meta.source == "rules"
    iso = extract_by_rules(_request("High priority, due 2026-12-01 09:30, assign to bob@acme.test", members))
    assert iso.due_at.isoformat() == "2026-12-01T09:30:00+01:00"
    assert (iso.priority, iso.assignee, iso.confidence) == (75, "bob@acme.test", 0.85)


def test_rules_say_nothing_when_there_is_nothing():
    """No phrase: no metadata and no confidence; an unknown assignee is noted, not guessed."""
    meta = extract_by_rules(_request("Please look at the printer. Assign to nobody@else.test"))
    assert (meta.due_at, meta.priority, meta.assignee, meta.confidence) == (None, None, "", None)
    assert any("no member" in note for note in meta.notes)


def test_reply_text_drops_the_quote_and_titles_drop_prefixes():
    """A reply keeps only its new text; a task title drops Re:/Fwd: prefixes."""
    assert reply_text("Done, shipped.\n\nOn Tue, 3 Nov 2026, Ann wrote:\n> Ship it\n> please") == "Done, shipped."
    assert reply_text("> only a quote") == "> only a quote"
    mail = parse_message(raw("From: a@x.test\nSubject: Fwd: RE: Order paper"))
    assert task_title(mail) == "Order paper"

"""The privacy filter: secrets are found (and never echoed); business contacts and look-alikes are kept."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memory import privacy

JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ."
    "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
PRIVATE_KEY = (
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA1c7y5nq3T0p+Yl1Rk1Q2w3e4r5t6y7u8i9o0p\n"
    "-----END RSA PRIVATE KEY-----"
)

SECRETS = [
    # payment cards: Luhn-valid, any separators
    ("Company card is 4111 1111 1111 1111, exp 09/27", "payment_card"),
    ("charge it to 4111-1111-1111-1111", "payment_card"),
    ("card: 4111.1111.1111.1111", "payment_card"),
    ("card number 4111111111111111", "payment_card"),
    ("Amex 3782 822463 10005 for travel", "payment_card"),
    ("MC 5500 0000 0000 0004", "payment_card"),
    ("Discover 6011-1111-1111-1117 expires soon", "payment_card"),
    ("use 4111 - 1111 - 1111 - 1111 then", "payment_card"),
    ("pay with 4111111111111111 2025", "payment_card"),
    # US social security numbers
    ("Her SSN is 123-45-6789.", "us_ssn"),
    ("social security number 123 45 6789", "us_ssn"),
    ("SSN: 123456789", "us_ssn"),
    # passwords in natural language and key: value form
    ("my password is hunter2", "password"),
    ("The wifi password for the office is BlueSky42!", "password"),
    ("password: Tr0ub4dor&3", "password"),
    ("pwd=s3cr3t!", "password"),
    ("log in with password letmein99", "password"),
    ("the admin passcode was changed to 7781zeta", "password"),
    ("Passwords are 'Winter2024' for both accounts", "password"),
    ("PIN is 4821", "password"),
    ("the door pin code for the back office is 004821", "password"),
    ("The password for sarah@acme.example is Winter2024", "password"),
    # credentials and provider keys
    ("API key is 9f8e7d6c5b4a39281706f5e4d3c2b1a0", "credential"),
    ("client_secret = 'x7Gh2kLp9QwErT5y'", "credential"),
    ("token=abc123def456ghi789", "credential"),
    ("Authorization: Bearer abcdef0123456789abcdef0123456789", "credential"),
    ("AWS key AKIAIOSFODNN7EXAMPLE in the script", "api_key"),
    ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "api_key"),
    ("github token ghp_1234567890abcdefghijklmnopqrstuvwxyzAB", "api_key"),
    ("slack bot xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx", "api_key"),
    ("stripe sk_live_4eC39HqLyjWDarjtT1zdp7dc", "api_key"),
    ("openai sk-proj-Ab12Cd34Ef56Gh78Ij90Kl12Mn34Op56", "api_key"),
    ("google AIzaSyA-1234567890abcdefghijklmnopqrstu", "api_key"),
    (f"session {JWT}", "api_key"),
    ("gitlab glpat-xxxxxxxxxxxxxxxxxxxx", "api_key"),
    ("hf token hf_abcdefghijklmnopqrstuvwxyzABCDEFGH", "api_key"),
    (f"deploy key:\n{PRIVATE_KEY}", "private_key"),
    ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA", "private_key"),
    ("db is postgres://admin:hunter2@db.acme.example/prod", "url_credentials"),
    # bank accounts
    ("Wire to GB82 WEST 1234 5698 7654 32 please", "iban"),
    ("IBAN DE89370400440532013000", "iban"),
    ("iban: fr14 2004 1010 0505 0001 3m02 606", "iban"),
]

NEAR_MISSES = [
    "Call Sarah at (415) 555-0132 tomorrow",
    "Her mobile is +1 415 555 0132",
    "London office: +44 20 7946 0958",
    "Berlin office: +49 30 12345678 9",
    "Email sarah.chen@acme.example about the invoice",
    "billing@acme.example handles payments",
    "Ship to 1 Market St, San Francisco, CA 94107",
    "ZIP code 94107-1234",
    "Card ending 4111 1111 1111 1112 was declined",  # Luhn-invalid digits
    "Order 1234567890123 shipped",  # Luhn-invalid 13 digits
    "Invoice INV-2024-0042 is due on 2024-05-06",
    "Revenue was $1,250,000.00 in Q3",
    "The meeting is at 10:30 on 06/05/2024",
    "I forgot my password again",
    "A password reset email was sent to sarah@acme.example",
    "Our password policy requires 12 characters",
    "The password is strong enough",
    "Passwords must be rotated every 90 days",
    "We keep the password manager licence on the team plan",
    "The API key rotation is due Friday",
    "The token is expired",
    "Publishable key pk_live_51H8abcdefghijklmnop is public",
    "EIN 12-3456789 on the W-9",
    "Tracking 1Z999AA10123456784",
    "GB82 WEST 1234 5698 7654 33 looks like an IBAN but fails the checksum",
    "Ticket PROJ-1234 blocks the release",
    "Version 4.11.1111 released",
    "Love the spider pin on your bag. Is it new?",
    "She wore a pin on her jacket: it was a gift",
    "Pin the document to the channel",
]


@pytest.mark.parametrize(("text", "kind"), SECRETS)
def test_secret_is_found(text, kind):
    """Each kind of secret is recognised, in the forms people write it."""
    kinds = [f.kind for f in privacy.scan(text)]
    assert kind in kinds, kinds


@pytest.mark.parametrize("text", NEAR_MISSES)
def test_near_miss_is_kept(text):
    """Phone numbers, business e-mails, ZIP codes, Luhn-invalid digits and talk about passwords are not secrets."""
    assert privacy.scan(text) == []


def test_findings_and_description_never_contain_the_secret():
    """The report names what was refused, never its content."""
    text = "card 4111 1111 1111 1111 and password: Tr0ub4dor&3"
    findings = privacy.scan(text, field="text")
    message = privacy.describe(findings)
    assert {f.kind for f in findings} == {"payment_card", "password"}
    assert all(f.field == "text" for f in findings)
    assert "4111" not in message
    assert "Tr0ub4dor" not in message
    assert all("4111" not in str(f.as_dict()) for f in findings)


def test_redact_replaces_each_secret_by_its_kind():
    """Redaction keeps the sentence and drops the secrets."""
    redacted = privacy.redact("Pay with 4111 1111 1111 1111 and call (415) 555-0132")
    assert redacted == "Pay with [a payment card number removed] and call (415) 555-0132"


def test_scan_fields_looks_inside_lists_and_mappings():
    """Secrets nested in attributes and aliases are found and attributed to their field."""
    findings = privacy.scan_fields({"attributes": {"note": "SSN 123-45-6789"}, "aliases": ["ok", "pwd: zz9Top!"]})
    assert sorted((f.field, f.kind) for f in findings) == [("aliases", "password"), ("attributes", "us_ssn")]


def test_luhn_and_iban_checks():
    """The checksums themselves."""
    assert privacy.luhn_valid("4111111111111111")
    assert not privacy.luhn_valid("4111111111111112")
    assert privacy.iban_valid("GB82 WEST 1234 5698 7654 32")
    assert not privacy.iban_valid("GB82 WEST 1234 5698 7654 33")
    assert not privacy.iban_valid("XX82 WEST 1234 5698 7654 32")


def _with_luhn_digit(body: str) -> str:
    for last in "0123456789":
        if privacy.luhn_valid(body + last):
            return body + last
    raise AssertionError("unreachable")


@settings(max_examples=200, deadline=None)
@given(
    body=st.text("0123456789", min_size=14, max_size=14),
    separator=st.sampled_from(["", " ", "-", ".", " - ", "/"]),
    context=st.sampled_from(["card {}", "{} exp 09/27", "pay with {} today", "{}"]),
)
def test_any_luhn_valid_visa_with_any_separator_is_found(body, separator, context):
    """Every Luhn-valid 16-digit Visa number is caught, whatever groups it in fours."""
    number = _with_luhn_digit("4" + body)
    grouped = separator.join(number[i:i + 4] for i in range(0, 16, 4))
    assert [f.kind for f in privacy.scan(context.format(grouped))] == ["payment_card"]


@settings(max_examples=200, deadline=None)
@given(
    area=st.integers(200, 999), exchange=st.integers(200, 999), line=st.integers(0, 9999),
    style=st.sampled_from(["({a}) {e}-{l:04d}", "{a}-{e}-{l:04d}", "+1 {a} {e} {l:04d}", "{a}.{e}.{l:04d}"]),
    zip_code=st.integers(10000, 99999),
)
def test_phone_numbers_and_zip_codes_are_kept(area, exchange, line, style, zip_code):
    """North American phone numbers and ZIP codes are business contacts, never secrets."""
    phone = style.format(a=area, e=exchange, l=line)
    assert privacy.scan(f"Call {phone}, office ZIP {zip_code} or {zip_code}-{line:04d}") == []

"""The privacy filter: secrets never enter memory.

Pure functions over text. :func:`scan` finds payment card numbers (Luhn-checked,
any separators, known card prefixes), US social security numbers, passwords
and credentials in natural language or ``key: value`` form, API keys and tokens
of common providers, private key blocks and IBANs (mod-97 checksum).

A finding says *what kind* of secret was seen and where, never the secret
itself. Near-misses are deliberately kept: phone numbers, business e-mail
addresses, ZIP codes, order numbers, dates and digit runs that fail the Luhn
check are business contacts and facts, not secrets.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Finding:
    """A secret seen in a text: its kind and span, never its content."""

    kind: str
    start: int
    end: int
    field: str = ""

    @property
    def label(self) -> str:
        return KIND_LABELS.get(self.kind, self.kind.replace("_", " "))

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "label": self.label, "field": self.field}


KIND_LABELS = {
    "payment_card": "a payment card number",
    "us_ssn": "a US social security number",
    "password": "a password",
    "credential": "a credential (secret, token or key)",
    "api_key": "an API key or access token",
    "private_key": "a private key",
    "iban": "a bank account number (IBAN)",
    "url_credentials": "a URL with a user name and password",
}


# --- payment cards -----------------------------------------------------------------------

_DIGIT_GROUPS = re.compile(r"\d+(?:[ \t\-./_]{1,3}\d+)*")
_SEPARATORS = re.compile(r"[ \t\-./_]{1,3}")


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum of a string of digits."""
    if not digits.isdigit():
        return False
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _card_brand_plausible(digits: str) -> bool:
    """Issuer prefixes and lengths of the card networks in use."""
    length = len(digits)
    two, three, four, six = int(digits[:2]), int(digits[:3]), int(digits[:4]), int(digits[:6])
    if digits[0] == "4":  # Visa
        return length in (13, 16, 19)
    if 51 <= two <= 55 or 222100 <= six <= 272099:  # Mastercard
        return length == 16
    if two in (34, 37):  # American Express
        return length == 15
    if four == 6011 or two == 65 or 644 <= three <= 649 or 622126 <= six <= 622925:  # Discover
        return 16 <= length <= 19
    if 3528 <= four <= 3589:  # JCB
        return 16 <= length <= 19
    if 300 <= three <= 305 or two in (36, 38, 39) or four == 3095:  # Diners Club
        return 14 <= length <= 19
    if two == 62:  # UnionPay
        return 16 <= length <= 19
    if two == 50 or 56 <= two <= 69:  # Maestro
        return 12 <= length <= 19
    return False


def _find_cards(text: str) -> list[Finding]:
    found: list[Finding] = []
    for match in _DIGIT_GROUPS.finditer(text):
        if match.start() > 0 and text[match.start() - 1] == "+":
            continue  # "+49 30 1234567 89": an international phone number, never a card
        # Split into digit groups with their offsets; try every run of consecutive groups of 13-19 digits,
        # so that "card 4111-1111-1111-1111 2025" still finds the card next to the year.
        groups = [(m.start() + match.start(), m.end() + match.start(), m.group()) for m in re.finditer(r"\d+",
                                                                                                     match.group())]
        if any(len(g[2]) > 19 for g in groups) and len(groups) == 1:
            continue
        for first in range(len(groups)):
            digits = ""
            for last in range(first, len(groups)):
                digits += groups[last][2]
                if len(digits) > 19:
                    break
                if len(digits) >= 13 and luhn_valid(digits) and _card_brand_plausible(digits):
                    found.append(Finding("payment_card", groups[first][0], groups[last][1]))
    return found


# --- US social security numbers ---------------------------------------------------------

_SSN_SEPARATED = re.compile(r"(?<![\d-])(\d{3})([- ])(\d{2})\2(\d{4})(?![\d-])")
_SSN_CONTEXT = re.compile(r"\b(?:ssn|social\s+security(?:\s+(?:number|no\.?|#))?|ss\s*#)\b[^\d]{0,20}(\d{9})\b", re.I)


def _ssn_plausible(area: str, group: str, serial: str) -> bool:
    return area not in ("000", "666") and not area.startswith("9") and group != "00" and serial != "0000"


def _find_ssns(text: str) -> list[Finding]:
    found = [
        Finding("us_ssn", m.start(), m.end())
        for m in _SSN_SEPARATED.finditer(text)
        if _ssn_plausible(m.group(1), m.group(3), m.group(4))
    ]
    for m in _SSN_CONTEXT.finditer(text):
        digits = m.group(1)
        if _ssn_plausible(digits[:3], digits[3:5], digits[5:]):
            found.append(Finding("us_ssn", m.start(1), m.end(1)))
    return found


# --- passwords and credentials ------------------------------------------------------------

# Words that follow "password is" in ordinary talk about passwords, not in a password.
_NOT_A_SECRET = frozenset(
    [
        "a", "an", "the", "this", "that", "these", "those", "my", "our", "your", "his", "her", "their", "its",
        "same", "different", "new", "old", "not", "no", "never", "now", "still", "also", "just", "only", "very",
        "really", "too", "so", "strong", "weak", "wrong", "incorrect", "correct", "right", "invalid", "valid",
        "expired", "expiring", "required", "needed", "optional", "mandatory", "missing", "empty", "blank",
        "long", "short", "secure", "insecure", "safe", "unsafe", "complex", "simple", "easy", "hard", "case",
        "sensitive", "set", "reset", "changed", "change", "rotated", "updated", "stored", "saved", "kept",
        "shared", "managed", "protected", "encrypted", "hashed", "forgotten", "forgot", "lost", "locked",
        "unknown", "known", "hidden", "secret", "private", "sent", "emailed", "texted", "attached", "in", "on",
        "at", "for", "with", "by", "from", "to", "of", "as", "be", "been", "being", "is", "are", "was", "were",
        "will", "would", "should", "must", "can", "could", "here", "there", "below", "above", "enclosed",
        "inside", "within", "policy", "policies", "manager", "managers", "vault", "rules", "rule",
        "requirements", "requirement", "length", "field", "prompt", "reset", "what", "which", "who", "whom",
        "when", "where", "why", "how", "please", "ask", "call", "check", "see", "contact",
    ]
)

_PASSWORD_WORDS = r"(?:pass(?:word|wd|phrase|code)s?|pwd|pw|passcode)"  # noqa: S105
# "for the office wifi", "of sarah@acme.example": never across a sentence end (". ").
_FOR_WHAT = r"(?:\s+(?:for|of|to|on)\s+(?:[\w@'-]|\.(?=\S)| ){1,40}?)?"
# "my password is X", "the wifi password for the office is X", "password was changed to X", "pwd: X".
_PASSWORD_NATURAL = re.compile(
    rf"\b{_PASSWORD_WORDS}\b{_FOR_WHAT}"
    r"\s*(?:\b(?:(?:has\s+been|have\s+been|was|were|is|got)\s+(?:changed|set|reset|updated)\s+to"
    r"|(?:changed|set|reset|updated)\s+to|will\s+be|is|was|are|were)\b|[:=])"
    r"\s*[\"'`“”‘’]?(?P<secret>[^\s\"'`“”‘’,;]{3,})",
    re.I,
)
# A PIN is digits: "the door PIN is 4821", "PIN: 0042" (a decorative "pin on your bag" is not one).
_PIN = re.compile(
    rf"\bpin(?:\s+(?:code|number))?\b{_FOR_WHAT}\s*(?:\b(?:is|was|are)\b|[:=])\s*[\"'`“”‘’]?(?P<secret>\d{{4,8}})\b",
    re.I,
)
_PASSWORD_AFTER = re.compile(
    rf"\b(?:use|with|using|log\s*in\s+with|login\s+with|sign\s+in\s+with)\s+(?:the\s+)?{_PASSWORD_WORDS}\s+"
    r"[\"'`“”‘’]?(?P<secret>[^\s\"'`“”‘’,;]{3,})",
    re.I,
)
_CREDENTIAL_KEYS = (
    r"(?:api[_\- ]?key|api[_\- ]?secret|apikey|secret(?:[_\- ]?key)?|client[_\- ]?secret|access[_\- ]?key(?:[_\- ]?id)?"
    r"|secret[_\- ]?access[_\- ]?key|access[_\- ]?token|auth[_\- ]?token|refresh[_\- ]?token|bearer[_\- ]?token"
    r"|session[_\- ]?token|private[_\- ]?key|signing[_\- ]?key|encryption[_\- ]?key|webhook[_\- ]?secret"
    r"|token|credentials?|license[_\- ]?key)"
)
_CREDENTIAL_KV = re.compile(
    rf"\b{_CREDENTIAL_KEYS}\b\s*(?:\b(?:is|was|are)\b|[:=]|=>)\s*[\"'`“”‘’]?(?P<secret>[A-Za-z0-9_\-./+=~]{{8,}})",
    re.I,
)
_BEARER = re.compile(r"\bBearer\s+(?P<secret>[A-Za-z0-9\-._~+/]{16,}=*)")
_BASIC_AUTH = re.compile(r"\bBasic\s+(?P<secret>[A-Za-z0-9+/]{12,}={0,2})(?![A-Za-z0-9+/=])")
_URL_CREDENTIALS = re.compile(r"\b[a-z][a-z0-9+.\-]{1,20}://[^\s/:@]{1,64}:[^\s/@]{1,128}@[^\s/]+", re.I)


def _looks_like_a_secret(value: str) -> bool:
    cleaned = value.strip(".!?)]}>").lower()
    if not cleaned or cleaned in _NOT_A_SECRET:
        return False
    return not (cleaned.startswith(("http://", "https://")) and "@" not in cleaned)


def _high_entropy(value: str) -> bool:
    """A generated token mixes letters with digits or symbols; a word does not."""
    letters = sum(c.isalpha() for c in value)
    others = len(value) - letters
    return letters >= 2 and others >= 2 and len(set(value)) >= 6


def _find_passwords(text: str) -> list[Finding]:
    found: list[Finding] = []
    for pattern in (_PASSWORD_NATURAL, _PASSWORD_AFTER, _PIN):
        for m in pattern.finditer(text):
            if _looks_like_a_secret(m.group("secret")):
                found.append(Finding("password", m.start("secret"), m.end("secret")))
    for m in _CREDENTIAL_KV.finditer(text):
        secret = m.group("secret")
        if _looks_like_a_secret(secret) and _high_entropy(secret):
            found.append(Finding("credential", m.start("secret"), m.end("secret")))
    for pattern in (_BEARER, _BASIC_AUTH):
        for m in pattern.finditer(text):
            if _high_entropy(m.group("secret")) or len(m.group("secret")) >= 24:
                found.append(Finding("credential", m.start("secret"), m.end("secret")))
    for m in _URL_CREDENTIALS.finditer(text):
        found.append(Finding("url_credentials", m.start(), m.end()))
    return found


# --- provider keys and tokens --------------------------------------------------------------

_PROVIDER_KEYS: list[tuple[str, re.Pattern[str]]] = [
    ("aws", re.compile(r"\b(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[0-9A-Z]{16}\b")),
    ("aws_secret", re.compile(r"\baws.{0,20}?(?:secret|key).{0,20}?[\"'`\s:=]([A-Za-z0-9/+=]{40})(?![A-Za-z0-9/+=])",
                              re.I)),
    ("github", re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,255}\b")),
    ("github", re.compile(r"\bgithub_pat_[A-Za-z0-9_]{22,255}\b")),
    ("gitlab", re.compile(r"\bglpat-[A-Za-z0-9_\-]{20,}\b")),
    ("slack", re.compile(r"\bxox[abposre]-[A-Za-z0-9-]{10,}\b")),
    ("slack", re.compile(r"https://hooks\.slack\.com/services/T[A-Za-z0-9_]+/B[A-Za-z0-9_]+/[A-Za-z0-9_]+")),
    ("stripe", re.compile(r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}\b")),
    ("stripe", re.compile(r"\bwhsec_[A-Za-z0-9]{24,}\b")),
    ("openai", re.compile(r"\bsk-(?:proj-|svcacct-|admin-|ant-(?:api\d\d-)?)?[A-Za-z0-9_\-]{20,}")),
    ("google", re.compile(r"\bAIza[0-9A-Za-z_\-]{35}(?![0-9A-Za-z_\-])")),
    ("google", re.compile(r"\bGOCSPX-[A-Za-z0-9_\-]{20,}")),
    ("google", re.compile(r"\bya29\.[0-9A-Za-z_\-]{20,}")),
    ("jwt", re.compile(r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}")),
    ("twilio", re.compile(r"\bSK[0-9a-f]{32}\b")),
    ("sendgrid", re.compile(r"\bSG\.[A-Za-z0-9_\-]{16,32}\.[A-Za-z0-9_\-]{16,64}\b")),
    ("npm", re.compile(r"\bnpm_[A-Za-z0-9]{36}\b")),
    ("pypi", re.compile(r"\bpypi-AgEIcHlwaS5vcmc[A-Za-z0-9_\-]{50,}")),
    ("huggingface", re.compile(r"\bhf_[A-Za-z0-9]{34,}\b")),
    ("mailgun", re.compile(r"\bkey-[0-9a-f]{32}\b")),
    ("shopify", re.compile(r"\bshp(?:at|ss|ca|pa)_[a-fA-F0-9]{32}\b")),
    ("azure", re.compile(r"\bAccountKey=[A-Za-z0-9+/]{40,}={0,2}")),
    ("square", re.compile(r"\bsq0(?:atp|csp)-[A-Za-z0-9_\-]{22,}")),
    ("digitalocean", re.compile(r"\bdo[pro]_v1_[a-f0-9]{64}\b")),
]


def _find_provider_keys(text: str) -> list[Finding]:
    found: list[Finding] = []
    for _provider, pattern in _PROVIDER_KEYS:
        for m in pattern.finditer(text):
            span = m.span(1) if m.groups() else m.span()
            found.append(Finding("api_key", span[0], span[1]))
    return found


# --- private keys ---------------------------------------------------------------------------

_PRIVATE_KEY = re.compile(
    r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----(?:.*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----)?",
    re.S,
)
_PUTTY_KEY = re.compile(r"PuTTY-User-Key-File-\d+:")


def _find_private_keys(text: str) -> list[Finding]:
    found = [Finding("private_key", m.start(), m.end()) for m in _PRIVATE_KEY.finditer(text)]
    found += [Finding("private_key", m.start(), m.end()) for m in _PUTTY_KEY.finditer(text)]
    return found


# --- IBAN -----------------------------------------------------------------------------------

_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29, "BY": 28,
    "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18,
    "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22,
    "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20,
    "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15,
    "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24, "SC": 31, "SE": 24, "SI": 19,
    "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}
_IBAN_CANDIDATE = re.compile(r"\b([A-Z]{2})[ ]?(\d{2})((?:[ \-]?[A-Z0-9]){10,30})\b", re.I)


def iban_valid(candidate: str) -> bool:
    """Country length and the ISO 13616 mod-97 checksum."""
    iban = re.sub(r"[\s\-]", "", candidate).upper()
    expected = _IBAN_LENGTHS.get(iban[:2])
    if expected is None or len(iban) != expected or not iban.isalnum():
        return False
    rearranged = iban[4:] + iban[:4]
    number = "".join(str(int(c, 36)) for c in rearranged)
    return int(number) % 97 == 1


def _find_ibans(text: str) -> list[Finding]:
    found: list[Finding] = []
    for m in _IBAN_CANDIDATE.finditer(text):
        candidate = m.group(0)
        # The regex may swallow a trailing word; shrink from the right until the length fits.
        compact = re.sub(r"[\s\-]", "", candidate).upper()
        expected = _IBAN_LENGTHS.get(compact[:2])
        if expected is None or len(compact) < expected:
            continue
        end = m.start()
        count = 0
        for index, char in enumerate(candidate):
            if char.isalnum():
                count += 1
            if count == expected:
                end = m.start() + index + 1
                break
        if iban_valid(text[m.start():end]):
            found.append(Finding("iban", m.start(), end))
    return found


# --- entry points -----------------------------------------------------------------------

_DETECTORS = (_find_private_keys, _find_provider_keys, _find_cards, _find_ssns, _find_ibans, _find_passwords)


def scan(text: str, *, field: str = "") -> list[Finding]:
    """Every secret in ``text``, as non-overlapping findings in reading order (kinds and spans only)."""
    if not text:
        return []
    findings: list[Finding] = []
    for detector in _DETECTORS:
        findings.extend(detector(text))
    findings.sort(key=lambda f: (f.start, -(f.end - f.start)))
    kept: list[Finding] = []
    for finding in findings:
        if kept and finding.start < kept[-1].end:
            continue
        kept.append(Finding(finding.kind, finding.start, finding.end, field))
    return kept


def contains_secret(text: str) -> bool:
    return bool(scan(text))


def redact(text: str, *, placeholder: str = "[{kind} removed]") -> str:
    """``text`` with every secret replaced by a placeholder naming its kind."""
    out: list[str] = []
    position = 0
    for finding in scan(text):
        out.append(text[position:finding.start])
        out.append(placeholder.format(kind=finding.label))
        position = finding.end
    out.append(text[position:])
    return "".join(out)


def scan_fields(fields: Mapping[str, object]) -> list[Finding]:
    """Scan every string (and every string inside lists and dicts) of ``fields``, naming the field."""
    findings: list[Finding] = []
    for name, value in fields.items():
        for text in _strings(value):
            findings.extend(scan(text, field=name))
    return findings


def _strings(value: object) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield str(key)
            yield from _strings(item)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from _strings(item)


def describe(findings: Iterable[Finding]) -> str:
    """A sentence for the user: what was refused, never the secret."""
    labels = sorted({f.label for f in findings})
    if not labels:
        return ""
    return "Not stored: it contains " + ", ".join(labels) + ". Secrets never go into memory."

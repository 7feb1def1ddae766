"""Read a raw message: headers, text, attachments and the signs that call for quarantine.

Pure functions (no database). Bad input never raises: undecodable parts fall
back to replacement characters, unknown character sets to UTF-8, and
structural MIME damage is reported in ``ParsedMail.malformed`` so that the
caller can quarantine the message with that reason.
"""

from __future__ import annotations

import hashlib
import mimetypes
import re
from dataclasses import dataclass, field
from email import errors as email_errors
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses, parseaddr

from automation.email_in.html_text import html_to_text

_MSGID = re.compile(r"<[^<>\s]{1,490}>")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_VERDICT = re.compile(r"\b(spf|dkim|dmarc)\s*=\s*([a-z]+)", re.IGNORECASE)
FAILED_VERDICTS = frozenset({"fail", "hardfail"})
MAX_TEXT = 100_000
MAX_REFERENCES = 50

# Damage that leaves the message's structure (and so its content) unreliable.
STRUCTURAL_DEFECTS: tuple[type[email_errors.MessageDefect], ...] = (
    email_errors.NoBoundaryInMultipartDefect,
    email_errors.StartBoundaryNotFoundDefect,
    email_errors.MultipartInvariantViolationDefect,
    email_errors.InvalidMultipartContentTransferEncodingDefect,
    email_errors.InvalidBase64CharactersDefect,
    email_errors.InvalidBase64LengthDefect,
)
_HEADER_ERRORS = (ValueError, TypeError, IndexError, LookupError, AttributeError, UnicodeError,
                  email_errors.MessageError)


@dataclass(frozen=True)
class ParsedAttachment:
    filename: str
    content_type: str
    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass
class ParsedMail:
    raw_size: int
    message_id: str
    has_message_id: bool
    subject: str = ""
    from_address: str = ""
    from_name: str = ""
    to: list[str] = field(default_factory=list)
    in_reply_to: str = ""
    references: list[str] = field(default_factory=list)
    text: str = ""
    text_truncated: bool = False
    attachments: list[ParsedAttachment] = field(default_factory=list)
    auto_reply: str = ""
    bounce: str = ""
    verdicts: dict[str, str] = field(default_factory=dict)
    defects: list[str] = field(default_factory=list)
    malformed: str = ""
    fatal: str = ""

    @property
    def thread_ids(self) -> list[str]:
        """Message-IDs this one answers (In-Reply-To first, then References, newest first)."""
        ids = [self.in_reply_to] if self.in_reply_to else []
        ids += [ref for ref in reversed(self.references) if ref not in ids]
        return ids

    @property
    def failed_verdicts(self) -> dict[str, str]:
        return {name: value for name, value in self.verdicts.items() if value in FAILED_VERDICTS}


def _clean_line(value: str, limit: int) -> str:
    value = _CONTROL.sub("", value.replace("\r", " ").replace("\n", " "))
    return re.sub(r"\s+", " ", value).strip()[:limit]


def _header(message: Message, name: str) -> str:
    try:
        value = message.get(name)
        return "" if value is None else str(value)
    except _HEADER_ERRORS:
        raw = message.get_all(name, failobj=[]) if hasattr(message, "get_all") else []
        return str(raw[0]) if raw else ""


def _headers(message: Message, name: str) -> list[str]:
    try:
        return [str(v) for v in message.get_all(name, failobj=[])]
    except _HEADER_ERRORS:
        return []


def normalize_message_id(value: str) -> str:
    """``<id@host>`` from a header value ('' when there is none)."""
    found = _MSGID.search(value or "")
    if found:
        return found.group(0)
    value = re.sub(r"\s+", "", _CONTROL.sub("", value or ""))
    if not value:
        return ""
    if len(value) > 480:
        return f"<sha256.{hashlib.sha256(value.encode()).hexdigest()}@long-message-id>"
    return f"<{value.strip('<>')}>"


def synthetic_message_id(raw: bytes) -> str:
    """A stable id for a message that has none: the same bytes get the same id."""
    return f"<sha256.{hashlib.sha256(raw).hexdigest()}@no-message-id>"


def _decode_text(part: Message) -> str:
    try:
        content = part.get_content()  # type: ignore[attr-defined]
        if isinstance(content, str) and "\ufffd" not in content:
            return content
    except (*_HEADER_ERRORS, KeyError):
        pass
    try:
        payload = part.get_payload(decode=True)
    except _HEADER_ERRORS:
        payload = None
    if not isinstance(payload, bytes):
        return ""
    charset = "utf-8"
    try:
        charset = part.get_content_charset() or "utf-8"
        text = payload.decode(charset, errors="replace")
    except (LookupError, UnicodeError):
        text = payload.decode("utf-8", errors="replace")
    if "\ufffd" in text:
        fallback = payload.decode("cp1252", errors="replace")
        if fallback.count("\ufffd") < text.count("\ufffd"):
            text = fallback
    return text


def safe_filename(name: str, content_type: str) -> str:
    """A plain file name: no folders, no control characters, no leading dot, at most 150 characters."""
    name = _CONTROL.sub("", (name or "").replace("\\", "/").rsplit("/", 1)[-1]).strip().lstrip(".")
    name = re.sub(r"\s+", " ", name)
    if not name:
        extension = mimetypes.guess_extension(content_type) or ".bin"
        name = f"attachment{extension}"
    if len(name) > 150:
        stem, dot, extension = name.rpartition(".")
        name = f"{stem[: 140 - len(extension)]}.{extension}" if dot and len(extension) <= 10 else name[:150]
    return name


def _attachment_of_message(part: Message) -> ParsedAttachment | None:
    inner = part.get_payload()
    inner_message = inner[0] if isinstance(inner, list) and inner else None
    if not isinstance(inner_message, Message):
        return None
    try:
        data = inner_message.as_bytes()
    except (*_HEADER_ERRORS, KeyError):
        data = str(inner_message).encode("utf-8", errors="replace")
    subject = _clean_line(_header(inner_message, "Subject"), 100) or "forwarded message"
    return ParsedAttachment(filename=safe_filename(f"{subject}.eml", "message/rfc822"),
                            content_type="message/rfc822", data=data)


def _collect(part: Message, body: Message | None, found: list[ParsedAttachment], depth: int = 0) -> None:
    if depth > 20:
        return
    content_type = part.get_content_type()
    if content_type == "message/rfc822":
        attachment = _attachment_of_message(part)
        if attachment is not None:
            found.append(attachment)
        return
    if part.is_multipart():
        payload = part.get_payload()
        for sub in payload if isinstance(payload, list) else []:
            if isinstance(sub, Message):
                _collect(sub, body, found, depth + 1)
        return
    if part is body:
        return
    disposition = part.get_content_disposition()
    filename = part.get_filename() if hasattr(part, "get_filename") else None
    if content_type in ("text/plain", "text/html") and disposition != "attachment" and not filename:
        return  # another rendering of the body
    try:
        data = part.get_payload(decode=True)
    except _HEADER_ERRORS:
        data = None
    found.append(ParsedAttachment(filename=safe_filename(str(filename or ""), content_type), content_type=content_type,
                                  data=data if isinstance(data, bytes) else b""))


def _all_defects(message: Message) -> list[email_errors.MessageDefect]:
    defects: list[email_errors.MessageDefect] = []
    for part in message.walk():
        defects.extend(getattr(part, "defects", []))
    return defects


def _auto_reply(message: Message, subject: str) -> str:
    auto = _header(message, "Auto-Submitted").strip().lower()
    if auto and auto != "no":
        return f"Auto-Submitted: {auto[:60]}"
    for name in ("X-Autoreply", "X-Autorespond", "X-Auto-Reply", "X-Autogenerated"):
        if message.get(name) is not None:
            return f"{name} header"
    precedence = _header(message, "Precedence").strip().lower()
    if precedence in ("bulk", "junk", "list", "auto_reply"):
        return f"Precedence: {precedence}"
    if subject.lower().startswith(("automatic reply:", "auto reply:", "autoreply:", "out of office:")):
        return f"subject {subject[:60]!r}"
    return ""


def _bounce(message: Message, from_address: str, envelope_sender: str | None) -> str:
    if message.get_content_type() == "multipart/report":
        report = (message.get_param("report-type") or "")
        if str(report).lower() == "delivery-status":
            return "a delivery status report (multipart/report)"
    for part in message.walk():
        if part.get_content_type() in ("message/delivery-status", "message/global-delivery-status"):
            return "a delivery status report"
    if envelope_sender is not None and envelope_sender.strip() in ("", "<>"):
        return "the envelope sender is empty (<>)"
    local = from_address.partition("@")[0]
    if local in ("mailer-daemon", "postmaster"):
        return f"sent by {from_address}"
    return ""


def _verdicts(message: Message) -> dict[str, str]:
    verdicts: dict[str, str] = {}

    def merge(name: str, value: str) -> None:
        value = value.lower()
        if name not in verdicts or value in FAILED_VERDICTS:
            verdicts[name] = value

    for value in _headers(message, "Authentication-Results"):
        for match in _VERDICT.finditer(value):
            merge(match.group(1).lower(), match.group(2))
    for value in _headers(message, "Received-SPF"):
        if value.split():
            merge("spf", value.split()[0])
    for name, key in (("X-Mailgun-Spf", "spf"), ("X-Mailgun-Dkim-Check-Result", "dkim")):
        value = _header(message, name).strip()
        if value:
            merge(key, value.split()[0])
    return verdicts


def parse_message(raw: bytes, *, envelope_sender: str | None = None) -> ParsedMail:
    """Everything processing needs from a raw message (``envelope_sender`` None when not known)."""
    message: Message = BytesParser(policy=policy.default).parsebytes(raw)
    header_id = normalize_message_id(_header(message, "Message-ID"))
    mail = ParsedMail(raw_size=len(raw), message_id=header_id or synthetic_message_id(raw),
                      has_message_id=bool(header_id))
    if not message.keys():
        mail.fatal = "the message has no headers"
        return mail
    mail.subject = _clean_line(_header(message, "Subject"), 500)
    name, address = parseaddr(_header(message, "From"))
    mail.from_address = address.strip().lower() if "@" in address else ""
    mail.from_name = _clean_line(name, 200)
    if not mail.from_address:
        mail.fatal = "the message has no valid From address"
        return mail
    mail.to = [a.lower() for _, a in getaddresses(_headers(message, "To") + _headers(message, "Cc")) if "@" in a][:100]
    in_reply_to = _MSGID.findall(_header(message, "In-Reply-To"))
    mail.in_reply_to = in_reply_to[0] if in_reply_to else ""
    mail.references = _MSGID.findall(_header(message, "References"))[-MAX_REFERENCES:]

    body: Message | None = None
    if isinstance(message, EmailMessage):
        try:
            body = message.get_body(preferencelist=("plain", "html"))
        except _HEADER_ERRORS:
            body = None
    if body is not None:
        text = _decode_text(body)
        if body.get_content_type() == "text/html":
            text = html_to_text(text)
        elif not text.strip() and isinstance(message, EmailMessage):
            html = message.get_body(preferencelist=("html",))
            if html is not None:
                text = html_to_text(_decode_text(html))
        text = _CONTROL.sub("", text.replace("\r\n", "\n")).strip()
        mail.text_truncated = len(text) > MAX_TEXT
        mail.text = text[:MAX_TEXT]
    attachments: list[ParsedAttachment] = []
    _collect(message, body, attachments)
    mail.attachments = attachments

    defects = _all_defects(message)
    mail.defects = sorted({type(d).__name__ for d in defects})
    structural = sorted({type(d).__name__ for d in defects if isinstance(d, STRUCTURAL_DEFECTS)})
    if structural:
        mail.malformed = "malformed MIME: " + ", ".join(structural)
    mail.auto_reply = _auto_reply(message, mail.subject)
    mail.bounce = _bounce(message, mail.from_address, envelope_sender)
    mail.verdicts = _verdicts(message)
    return mail

"""Read one raw email into plain facts: addresses, thread ids, kind of mail, new text, attachments.

Pure Python (standard library plus mail-parser-reply for the reply headers of many languages):
no Flask, no database. `parse_message` never raises for bad input; it says what was wrong in
`problem` and returns what it could read.
"""
from __future__ import annotations

import hashlib
import re
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email import message_from_bytes
from email.header import decode_header
from email.message import Message
from email.parser import BytesHeaderParser, HeaderParser
from email.policy import compat32
from email.utils import getaddresses, parsedate_to_datetime
from html import unescape
from html.parser import HTMLParser
from mimetypes import guess_extension

from mailparser_reply import EmailMessage as _ReplyHeaders

DEFAULT_MAX_BYTES = 25 * 1024 * 1024
MAX_PARTS = 500  # MIME parts looked at; a mail bomb of nested parts stops here
MAX_DEPTH = 20  # nesting of multiparts / attached messages
MAX_IDS = 100  # Message-IDs kept from In-Reply-To / References / a bounce
MAX_ADDRESSES = 200  # per address header
SUBJECT_MAX = 998  # RFC 5322 line limit
REASON_MAX = 300
SCAN_MAX_CHARS = 200_000  # quote headers are looked for in the first part of the text only
SCAN_LINE_MAX = 400  # and per line only that far: reply headers are short, the regexes are not linear

AUTO_SUBMITTED = "auto-submitted"
PRECEDENCE = "precedence"
AUTO_REPLY = "auto-reply"
BOUNCE = "bounce"


@dataclass
class MailAttachment:
    """One real attachment of a mail (not a body alternative)."""

    filename: str
    content_type: str
    data: bytes


@dataclass
class ParsedMail:
    """What the helpdesk needs to know about one received mail."""

    message_id: str
    from_address: str | None
    from_name: str
    to: list[str]
    cc: list[str]
    delivered_to: list[str]
    subject: str
    date: datetime | None
    in_reply_to: list[str]
    references: list[str]
    auto: str | None
    bounce: bool
    bounced_message_ids: list[str]
    bounce_reason: str | None
    text: str
    full_text: str
    attachments: list[MailAttachment] = field(default_factory=list)
    problem: str | None = None


def parse_message(raw: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> ParsedMail:
    """Parse one raw RFC 5322 message; never raise for bad input (see `problem`)."""
    if not isinstance(raw, (bytes, bytearray, memoryview)):
        raw = b""
    raw = bytes(raw)
    too_large = len(raw) > max_bytes
    try:
        if too_large:
            message = BytesHeaderParser(policy=compat32).parsebytes(_header_block(raw))
        else:
            message = message_from_bytes(raw, policy=compat32)
    except Exception:  # the parser is lenient; this is the last line of defence
        message = Message()
    try:
        return _read(message, raw, too_large)
    except Exception:  # a defect we did not foresee must not stop the mail: hold it as unparsable
        return _empty(raw, problem="unparsable")


# ---------------------------------------------------------------------------------------------
# the whole message


def _read(message: Message, raw: bytes, too_large: bool) -> ParsedMail:
    from_name, from_address = _first_address(message, "From")
    if from_address is None:
        from_name, from_address = _first_address(message, "Sender")
    subject = _one_line(_header(message, "Subject"))[:SUBJECT_MAX]
    parsed = ParsedMail(
        message_id=_message_id(message, raw),
        from_address=from_address,
        from_name=from_name,
        to=_addresses(message, "To"),
        cc=_addresses(message, "Cc"),
        delivered_to=_addresses(message, "Delivered-To", "X-Original-To", "Envelope-To"),
        subject=subject,
        date=_date(_header(message, "Date")),
        in_reply_to=_ids(_header(message, "In-Reply-To")),
        references=_ids(_header(message, "References")),
        auto=None,
        bounce=False,
        bounced_message_ids=[],
        bounce_reason=None,
        text="",
        full_text="",
        attachments=[],
        problem=None,
    )
    if not _looks_like_mail(message):
        parsed.problem = "unparsable"
        return parsed
    parsed.bounce = _is_bounce(message, from_address)
    parsed.auto = _auto_kind(message, parsed.bounce)
    if too_large:
        parsed.problem = "too_large"
        if parsed.bounce:  # a bounce that returns a big original: the thread headers still name it
            parsed.bounced_message_ids = _bounced_ids(_Walker(), parsed)
        return parsed

    walker = _Walker()
    full_text = walker.body_text(message, 0)
    parsed.full_text = _clean(full_text)
    parsed.attachments = walker.attachments
    if _FORWARD_SUBJECT.match(subject):
        # a mail forwarded to the helpdesk: the forwarded part is the request, not history
        parsed.text = _tidy(parsed.full_text.split("\n"))
    else:
        parsed.text = strip_reply(parsed.full_text)
    if parsed.bounce:
        parsed.bounced_message_ids = _bounced_ids(walker, parsed)
        parsed.bounce_reason = _bounce_reason(walker, parsed)
    if not parsed.text and not parsed.attachments:
        parsed.problem = "no_text"
    return parsed


def _empty(raw: bytes, *, problem: str) -> ParsedMail:
    return ParsedMail(
        message_id=_synthetic_id(raw), from_address=None, from_name="", to=[], cc=[], delivered_to=[],
        subject="", date=None, in_reply_to=[], references=[], auto=None, bounce=False,
        bounced_message_ids=[], bounce_reason=None, text="", full_text="", attachments=[], problem=problem,
    )


def _header_block(raw: bytes) -> bytes:
    """Return the header section of a raw message (up to the first empty line)."""
    ends = [i for i in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if i >= 0]
    end = min(ends) if ends else min(len(raw), 1024 * 1024)
    return raw[:min(end, 1024 * 1024)] + b"\n\n"


_MAIL_HEADERS = ("from", "sender", "to", "cc", "subject", "date", "message-id", "received", "return-path",
                 "mime-version", "content-type", "delivered-to", "in-reply-to", "references")


def _looks_like_mail(message: Message) -> bool:
    """A message is readable when the parser found at least one well-known mail header."""
    try:
        names = {str(key).strip().lower() for key in message.keys()}
    except Exception:
        return False
    return any(name in names for name in _MAIL_HEADERS)


# ---------------------------------------------------------------------------------------------
# headers


def _clean(text: str) -> str:
    """Make a string safe to store: no NUL, no lone surrogates, "\\n" line ends."""
    if not text:
        return ""
    text = text.replace("\x00", "").replace("\r\n", "\n").replace("\r", "\n")
    return text.encode("utf-8", "replace").decode("utf-8")


def _decode_bytes(data: bytes, charset: str | None) -> str:
    """Decode bytes in the declared charset, falling back to UTF-8 and then Windows-1252."""
    for candidate in (charset, "utf-8"):
        if not candidate:
            continue
        candidate = candidate.strip().strip('"').lower()
        if candidate in ("unknown-8bit", "x-unknown", "8bit", "us-ascii", "ascii"):
            candidate = "utf-8"  # "ascii" mails with 8-bit bytes are UTF-8 or Windows-1252 in practice
        elif candidate in ("iso-8859-1", "iso8859-1", "latin-1", "latin1", "l1"):
            candidate = "cp1252"  # as browsers do: Outlook labels Windows-1252 text (the "–" dash) Latin-1
        try:
            return data.decode(candidate)
        except (LookupError, UnicodeDecodeError, ValueError):
            continue
    return data.decode("cp1252", "replace")


def _unsurrogate(value: str) -> str:
    """Turn raw 8-bit header bytes (kept as surrogates by the parser) back into text."""
    if not any("\udc80" <= ch <= "\udcff" for ch in value):
        return value
    return _decode_bytes(value.encode("utf-8", "surrogateescape"), None)


def decode_words(value: str) -> str:
    """Decode RFC 2047 encoded words in a header value; unknown charsets never raise."""
    value = _unsurrogate(value)
    if "=?" not in value:
        return value
    try:
        chunks = decode_header(value)
    except Exception:
        return value
    out: list[str] = []
    for data, charset in chunks:  # decode_header keeps the spaces around encoded words in the plain chunks
        out.append(data if isinstance(data, str) else _decode_bytes(data, charset))
    return "".join(out)


def _header(message: Message, name: str) -> str:
    """Return one decoded header value ('' when missing or unreadable)."""
    try:
        value = message.get(name)
    except Exception:
        return ""
    if value is None:
        return ""
    return _clean(decode_words(str(value)))


def _raw_headers(message: Message, *names: str) -> list[str]:
    values: list[str] = []
    for name in names:
        try:
            values.extend(str(v) for v in (message.get_all(name) or []))
        except Exception:
            continue
    return values


def _one_line(value: str) -> str:
    return " ".join(value.split())


def _address_pairs(values: list[str]) -> list[tuple[str, str]]:
    try:
        pairs = getaddresses([_unsurrogate(v) for v in values])
    except Exception:
        return []
    return pairs[:MAX_ADDRESSES]


_ADDR_SPEC = re.compile(r"^[^@\s<>(),;:\"\[\]\\]+@[^@\s<>(),;:\"\[\]\\]+$")


def _normal_address(address: str) -> str | None:
    address = _clean(address).strip().strip("<>").strip().lower()
    return address if _ADDR_SPEC.match(address) and len(address) <= 254 else None


def _addresses(message: Message, *names: str) -> list[str]:
    """Return the lower-cased addr-specs of the named headers, each once, in header order."""
    result: list[str] = []
    for _, address in _address_pairs(_raw_headers(message, *names)):
        normal = _normal_address(address)
        if normal and normal not in result:
            result.append(normal)
    return result


def _first_address(message: Message, name: str) -> tuple[str, str | None]:
    for display, address in _address_pairs(_raw_headers(message, name)):
        normal = _normal_address(address)
        if normal:
            return _one_line(_clean(decode_words(display))).strip("'\" ")[:200], normal
    return "", None


_ID = re.compile(r"<[^<>\s]{1,500}>")


def _ids(value: str) -> list[str]:
    """Return the "<...>" Message-IDs of a header, each once, in header order."""
    result: list[str] = []
    for found in _ID.findall(value):
        if found not in result:
            result.append(found)
        if len(result) >= MAX_IDS:
            break
    return result


def _synthetic_id(raw: bytes) -> str:
    return f"<{hashlib.sha256(raw).hexdigest()}@no-message-id.invalid>"


def _message_id(message: Message, raw: bytes) -> str:
    value = _header(message, "Message-ID").strip()
    ids = _ids(value)
    if ids:
        return ids[0]
    bare = value.split()[0] if value.split() else ""
    if bare and "@" in bare and len(bare) <= 500 and not re.search(r"[<>\s]", bare):
        return f"<{bare}>"  # some mailers forget the angle brackets
    return _synthetic_id(raw)


def _date(value: str) -> datetime | None:
    """Return the Date header as an aware UTC datetime (a date without zone counts as UTC)."""
    if not value.strip():
        return None
    try:
        parsed = parsedate_to_datetime(value.strip())
    except Exception:
        return None
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    try:
        return parsed.astimezone(timezone.utc)
    except (OverflowError, ValueError):
        return None


# ---------------------------------------------------------------------------------------------
# automatic mail and bounces

_SUBJECT_AUTO = re.compile(
    r"^\s*(automatische antwort|automatic reply|auto(matic)?[- ]?reply|out of (the )?office|abwesenheit(snotiz)?"
    r"|abwesend|r[eé]ponse automatique|absence)\b", re.IGNORECASE)
_FORWARD_SUBJECT = re.compile(r"^\s*(?:fwd?|wg|wtr|tr|fw)\s*:", re.IGNORECASE)
_BOUNCE_SENDER = re.compile(r"^(mailer-daemon|postmaster|mail-daemon|mailerdaemon)@", re.IGNORECASE)


def _is_bounce(message: Message, from_address: str | None) -> bool:
    """A delivery status notification, a mail from the mailer daemon / postmaster, or a null sender."""
    content_type = _content_type(message)
    if content_type == "multipart/report":
        report_type = (message.get_param("report-type") or "")
        if not isinstance(report_type, str) or report_type.lower() in ("delivery-status", ""):
            return True
    if from_address and _BOUNCE_SENDER.match(from_address):
        return True
    return_paths = [v.strip() for v in _raw_headers(message, "Return-Path")]
    if return_paths and all(v.replace(" ", "") in ("<>", "") for v in return_paths):
        # RFC 3834 asks auto-responders to send from the null sender too: those are no bounce
        return not _has_auto_reply_headers(message)
    return False


def _has_auto_reply_headers(message: Message) -> bool:
    if _raw_headers(message, "X-Autoreply", "X-Autorespond", "X-Autoresponder"):
        return True
    submitted = _header(message, "Auto-Submitted").strip().lower()
    if submitted.startswith("auto-replied"):
        return True
    exchange = _raw_headers(message, "X-MS-Exchange-Inbox-Rules-Loop", "X-Auto-Response-Suppress",
                            "X-MS-Exchange-Generated-Message-Source")
    return bool(exchange) and bool(_SUBJECT_AUTO.match(_header(message, "Subject")))


def _auto_kind(message: Message, bounce: bool) -> str | None:
    """Say why a mail was sent by a machine (None for a mail a person wrote)."""
    if bounce:
        return BOUNCE
    if _has_auto_reply_headers(message) or _content_type(message) == "multipart/report":
        return AUTO_REPLY  # a report that is no delivery status: a read receipt (disposition notification)
    submitted = _header(message, "Auto-Submitted").strip().lower()
    if submitted and submitted.split(";")[0].strip() != "no":
        return AUTO_SUBMITTED
    precedence = _header(message, "Precedence").strip().lower()
    if precedence in ("bulk", "list", "junk", "auto_reply"):
        return PRECEDENCE
    if _raw_headers(message, "List-Id", "List-Unsubscribe", "List-Post"):
        return PRECEDENCE  # mailing-list traffic, treated like Precedence: list
    return None


_SMTP_REPLY = re.compile(r"\b[45]\d\d[ -]?(?:#?[45]\.\d{1,3}\.\d{1,3})?\b[^\n]{0,300}")
_BODY_ID_LINE = re.compile(r"^\s*>?\s*Message-ID\s*:\s*(<[^<>\s]{1,500}>)", re.IGNORECASE | re.MULTILINE)


def _bounced_ids(walker: "_Walker", parsed: ParsedMail) -> list[str]:
    """Message-IDs of the original mails a bounce reports."""
    ids: list[str] = []
    for original in walker.original_headers:
        ids.extend(_ids(_header(original, "Message-ID")))
    if not ids:
        ids.extend(m.group(1) for m in _BODY_ID_LINE.finditer(parsed.full_text[:SCAN_MAX_CHARS]))
    if not ids:
        ids.extend(parsed.in_reply_to + parsed.references)
    unique: list[str] = []
    for found in ids:
        if found not in unique and found != parsed.message_id:
            unique.append(found)
    return unique[:MAX_IDS]


def _bounce_reason(walker: "_Walker", parsed: ParsedMail) -> str | None:
    """One line saying why delivery failed, from the DSN fields or the bounce text."""
    diagnostic = status = action = ""
    for block in walker.delivery_status:
        diagnostic = diagnostic or _header(block, "Diagnostic-Code")
        status = status or _header(block, "Status")
        action = action or _header(block, "Action")
    if diagnostic:
        kind, _, rest = diagnostic.partition(";")
        reason = rest if rest.strip() and kind.strip().lower() in ("smtp", "x-postfix", "x-unix", "x-local") \
            else diagnostic
    elif status:
        reason = f"{status} {action}".strip()
    else:
        found = _SMTP_REPLY.search(parsed.full_text[:SCAN_MAX_CHARS])
        reason = found.group(0) if found else parsed.subject
    reason = _one_line(reason)[:REASON_MAX]
    return reason or None


# ---------------------------------------------------------------------------------------------
# MIME structure: body text and attachments


def _content_type(part: Message) -> str:
    try:
        return part.get_content_type().lower()
    except Exception:
        return "text/plain"


def _disposition(part: Message) -> str:
    try:
        value = part.get("Content-Disposition")
    except Exception:
        return ""
    return str(value).split(";")[0].strip().lower() if value else ""


_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f]")


def _filename(part: Message) -> str:
    try:
        name = part.get_filename()
    except Exception:
        name = None
    if not name:
        return ""
    name = _clean(decode_words(str(name)))  # Outlook puts RFC 2047 words into name="..."
    name = re.split(r"[\\/]", name)[-1]  # never a path
    name = _UNSAFE_NAME.sub("", name).strip().strip(".") or ""
    return name[:200]


def _payload_bytes(part: Message) -> bytes:
    try:
        data = part.get_payload(decode=True)
    except Exception:
        data = None
    if isinstance(data, bytes):
        return data
    try:
        payload = part.get_payload()
    except Exception:
        return b""
    if isinstance(payload, str):
        return payload.encode("utf-8", "surrogateescape")
    return b""


def _part_text(part: Message) -> str:
    data = _payload_bytes(part)
    try:
        charset = part.get_content_charset()
    except Exception:
        charset = None
    return _decode_bytes(data, charset)


def _param(part: Message, name: str) -> str:
    try:
        value = part.get_param(name)
    except Exception:
        return ""
    return value.strip().lower() if isinstance(value, str) else ""


def _unflow(text: str, part: Message) -> str:
    """Join the soft line breaks of format=flowed text (RFC 3676) so paragraphs read as written."""
    delsp = _param(part, "delsp") == "yes"
    out: list[str] = []
    joining = False
    for line in text.replace("\r\n", "\n").split("\n"):
        if line.startswith(">"):  # quoted lines stay as they are: they are dropped as history anyway
            out.append(line)
            joining = False
            continue
        body = line[1:] if line.startswith(" ") else line  # space-stuffing
        soft = body.endswith(" ") and body != "-- "
        if soft and delsp:
            body = body[:-1]
        if joining:
            out[-1] += body
        else:
            out.append(body)
        joining = soft
    return "\n".join(out)


def _message_bytes(message: Message) -> bytes:
    try:
        return message.as_bytes()
    except Exception:
        try:
            return message.as_string().encode("utf-8", "surrogateescape")
        except Exception:
            return b""


class _Walker:
    """Walk the MIME tree once, bounded: collect the body text, attachments and bounce parts."""

    def __init__(self) -> None:
        self.attachments: list[MailAttachment] = []
        self.original_headers: list[Message] = []
        self.delivery_status: list[Message] = []
        self.parts_seen = 0
        self.in_report = 0  # inside a multipart/report the returned original is no attachment

    def body_text(self, part: Message, depth: int) -> str:
        """Return the text of this part for the body, and note attachments on the way."""
        self.parts_seen += 1
        if depth > MAX_DEPTH or self.parts_seen > MAX_PARTS:
            return ""
        content_type = _content_type(part)
        if part.is_multipart() and not content_type.startswith("message/"):
            children = self._children(part)
            if content_type == "multipart/alternative":
                return self._alternative(children, depth)
            if content_type == "multipart/report":
                self._report(children)
                self.in_report += 1
            texts = [self.body_text(child, depth + 1) for child in children]
            if content_type == "multipart/report":
                self.in_report -= 1
            return "\n\n".join(text.strip("\n") for text in texts if text.strip())
        if content_type.startswith("message/"):
            self._message_part(part, content_type)
            return ""
        if content_type == "text/rfc822-headers" or content_type.startswith("multipart/"):
            return ""  # a bounce's returned headers (read by _report); a multipart whose boundary is lost
        filename = _filename(part)
        disposition = _disposition(part)
        if disposition == "attachment" or filename or not content_type.startswith("text/"):
            self._attach(part, filename, content_type)
            return ""
        if content_type == "text/html":
            return html_to_text(_part_text(part))
        if content_type in ("text/plain", "text/enriched", "text/markdown") or content_type.startswith("text/x-"):
            text = _part_text(part)
            return _unflow(text, part) if _param(part, "format") == "flowed" else text
        self._attach(part, filename, content_type)  # text/calendar, text/csv ... are files
        return ""

    def _children(self, part: Message) -> list[Message]:
        try:
            payload = part.get_payload()
        except Exception:
            return []
        return [child for child in payload if isinstance(child, Message)] if isinstance(payload, list) else []

    def _alternative(self, children: list[Message], depth: int) -> str:
        """Prefer the plain text alternative; the HTML one is read only when no plain text exists."""
        def has_type(child: Message, wanted: str) -> bool:
            kind = _content_type(child)
            if kind == wanted:
                return True
            return kind.startswith("multipart/") and any(has_type(c, wanted) for c in self._children(child)[:50])

        chosen, text = None, ""
        for wanted in ("text/plain", "text/html"):
            for child in children:
                if chosen is None and has_type(child, wanted) and not _filename(child):
                    text = self.body_text(child, depth + 1)
                    if text.strip():
                        chosen = child
        if chosen is None and children:
            chosen = children[-1]
            text = self.body_text(chosen, depth + 1)
        for child in children:
            if child is not chosen:
                self.body_text(child, depth + 1)  # its text is a duplicate, but an inline image beside the
                # HTML alternative (multipart/related) is a real attachment
        return text

    def _report(self, children: list[Message]) -> None:
        for child in children:
            kind = _content_type(child)
            if kind in ("text/rfc822-headers", "message/rfc822-headers", "message/global-headers"):
                text = _part_text(child) if not child.is_multipart() else ""
                try:
                    self.original_headers.append(HeaderParser(policy=compat32).parsestr(text.lstrip()))
                except Exception:
                    continue

    def _message_part(self, part: Message, content_type: str) -> None:
        payload = part.get_payload()
        inner = payload[0] if isinstance(payload, list) and payload and isinstance(payload[0], Message) else None
        if content_type in ("message/delivery-status", "message/global-delivery-status"):
            if isinstance(payload, list):
                self.delivery_status.extend(block for block in payload if isinstance(block, Message))
            else:
                self.delivery_status.extend(_status_blocks(_part_text(part)))
            return
        if content_type in ("message/rfc822-headers", "message/global-headers"):
            self._report([part])
            return
        if inner is None and isinstance(payload, str):
            try:
                inner = message_from_bytes(_payload_bytes(part), policy=compat32)
            except Exception:
                inner = None
        if inner is None:
            return
        self.original_headers.append(inner)
        if self.in_report:
            return
        subject = _one_line(_header(inner, "Subject"))[:100]
        name = _filename(part) or re.sub(r"[\\/:*?\"<>|]", "_", subject or "Nachricht") + ".eml"
        self.attachments.append(MailAttachment(filename=name, content_type="message/rfc822",
                                               data=_message_bytes(inner)))

    def _attach(self, part: Message, filename: str, content_type: str) -> None:
        data = _payload_bytes(part)
        if not filename:
            if not data.strip():
                return  # an empty part without a name is nobody's file
            filename = "anhang" + (guess_extension(content_type) or ".bin")
        self.attachments.append(MailAttachment(filename=filename, content_type=content_type, data=data))


def _status_blocks(text: str) -> list[Message]:
    """Parse a delivery-status body that the parser left as text into its header blocks."""
    blocks = []
    for chunk in re.split(r"\n\s*\n", text.replace("\r\n", "\n"))[:50]:
        if chunk.strip():
            try:
                blocks.append(HeaderParser(policy=compat32).parsestr(chunk.strip() + "\n"))
            except Exception:
                continue
    return blocks


# ---------------------------------------------------------------------------------------------
# HTML to plain text

_SKIP_TAGS = {"script", "style", "head", "title", "template", "noscript", "svg", "object", "iframe"}
_BLOCK_TAGS = {"p", "div", "table", "ul", "ol", "dl", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "address",
               "section", "article", "header", "footer", "aside", "nav", "main", "form", "fieldset",
               "figure", "center", "blockquote", "hr", "tr", "dt", "dd", "body", "html"}
_PARAGRAPH_TAGS = {"p", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol", "blockquote", "pre"}
_VOID_TAGS = {"br", "hr", "img", "meta", "link", "input", "area", "base", "col", "embed", "source", "wbr"}


class _TextMaker(HTMLParser):
    """Render HTML as plain text: no markup, no script/style content, block elements on their own lines."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.line = ""
        self.skip = 0
        self.pre = 0
        self.quote = 0
        self.links: list[str] = []  # href of each open <a>
        self.link_text: list[str] = []  # and the text written inside it so far

    # text output -------------------------------------------------------------------------
    def newline(self) -> None:
        prefix = "> " * self.quote
        self.lines.append(prefix + self.line.rstrip() if self.line.strip() else prefix.rstrip())
        self.line = ""

    def block(self, paragraph: bool) -> None:
        if self.line.strip():
            self.newline()
        separator = ("> " * self.quote).rstrip()
        if paragraph and self.lines and self.lines[-1] != separator:
            self.lines.append(separator)

    def write(self, text: str) -> None:
        if self.link_text:
            self.link_text[-1] += text
        self.line += text

    # parser callbacks ----------------------------------------------------------------------
    def handle_starttag(self, tag: str, attrs) -> None:
        tag = tag.lower()
        if tag in _SKIP_TAGS:
            if tag not in _VOID_TAGS:
                self.skip += 1
            return
        if self.skip:
            return
        if tag == "br":
            self.newline()
        elif tag == "li":
            self.block(False)
            self.line = "- "
        elif tag in ("td", "th"):
            if self.line.strip():
                self.line += "  "
        elif tag == "a":
            href = dict(attrs).get("href") or ""
            self.links.append(href.strip())
            self.link_text.append("")
        elif tag in _BLOCK_TAGS:
            self.block(tag in _PARAGRAPH_TAGS)
            if tag == "blockquote":
                self.quote += 1
            elif tag == "pre":
                self.pre += 1
            elif tag == "hr":
                self.lines.append("-" * 20)

    def handle_startendtag(self, tag: str, attrs) -> None:
        self.handle_starttag(tag, attrs)
        if tag.lower() not in _VOID_TAGS:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        tag = tag.lower()
        if tag in _SKIP_TAGS:
            self.skip = max(0, self.skip - 1)
            return
        if self.skip:
            return
        if tag == "a" and self.links:
            href = self.links.pop()
            text = self.link_text.pop().strip() if self.link_text else ""
            shown = href[7:].split("?")[0] if href.lower().startswith("mailto:") else href
            if href.lower().startswith(("http://", "https://", "mailto:")) and shown and \
                    shown.rstrip("/") not in text:
                self.write(f" ({shown})" if text else shown)
        elif tag in _BLOCK_TAGS or tag == "li":
            self.block(tag in _PARAGRAPH_TAGS)
            if tag == "blockquote":
                self.quote = max(0, self.quote - 1)
            elif tag == "pre":
                self.pre = max(0, self.pre - 1)

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        if self.pre:
            for index, part in enumerate(data.replace("\r\n", "\n").split("\n")):
                if index:
                    self.newline()
                self.write(part)
            return
        text = re.sub(r"[ \t\r\n\f\u200b]+", " ", data.replace("\xa0", " "))
        if not self.line.strip() or self.line.endswith(" "):
            text = text.lstrip(" ")
        self.write(text)

    def result(self) -> str:
        self.newline()
        return "\n".join(self.lines)


def html_to_text(html: str) -> str:
    """Turn an HTML mail body into readable plain text (links as "text (url)")."""
    maker = _TextMaker()
    try:
        maker.feed(html)
        maker.close()
        text = maker.result()
    except Exception:  # html.parser is forgiving; a broken document still becomes text
        text = unescape(re.sub(r"<[^>]*>", " ", re.sub(r"(?is)<(script|style)\b.*?</\1\s*>", " ", html)))
    text = text.replace("\xa0", " ")
    lines = [line.rstrip() for line in text.split("\n")]
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n")


# ---------------------------------------------------------------------------------------------
# quoted history and signatures

_OWN_SEPARATORS = re.compile(
    r"^\s*(?:>\s*)*[-_=*]{2,}\s*(?:Urspr(?:ü|ue)ngliche Nachricht|Original(?:nachricht| Message)"
    r"|Nachricht im Original)\s*[-_=*]{2,}\s*$",
    re.IGNORECASE | re.MULTILINE)
_SIGNATURE_DELIMITER = re.compile(r"^-- ?$")
_MOBILE_FOOTER = re.compile(
    r"^\s*(?:Sent from my \S.{0,40}|Sent from (?:Mail|Outlook) for \S.{0,30}|Von meinem \S.{0,40} gesendet\.?"
    r"|Gesendet von meinem \S.{0,40}|Gesendet (?:von|mit) (?:Mail|Outlook) f(?:ü|ue)r \S.{0,30}"
    r"|Get Outlook for (?:iOS|Android)\S*|Outlook f(?:ü|ue)r (?:iOS|Android) (?:beziehen|herunterladen)\S*)\s*$",
    re.IGNORECASE)
_RULE_LINE = re.compile(r"^\s*[-_=*]{5,}\s*$")
_header_regex = None


def _reply_header_regex():
    """The reply-header patterns of mail-parser-reply for German and English (built once).

    Only its header patterns are used ("Am … schrieb …:", "On … wrote:", "Von:/Gesendet:" and
    "From:/Sent:" blocks, quoted or not): its signature and disclaimer rules cut everything after
    a line starting with "- ", "Grüße" or "Hinweis:", which loses what people wrote.
    """
    global _header_regex
    if _header_regex is None:
        with warnings.catch_warnings():  # the library passes re.sub flags positionally (deprecated in 3.13)
            warnings.simplefilter("ignore", DeprecationWarning)
            _header_regex = _ReplyHeaders(text="", languages=["de", "en"]).HEADER_REGEX
    return _header_regex


def _first_header_line(lines: list[str]) -> tuple[int, int] | None:
    """Return (first line, line after) of the earliest reply header / separator, or None."""
    scan_lines, total = [], 0
    for line in lines:
        scan_lines.append(line.strip()[:SCAN_LINE_MAX])
        total += len(scan_lines[-1]) + 1
        if total > SCAN_MAX_CHARS:
            break
    scan = "\n".join(scan_lines)
    best: tuple[int, int] | None = None
    for regex in (_reply_header_regex(), _OWN_SEPARATORS):
        for match in regex.finditer(scan):
            found = match.group(0)
            if not found.strip():
                continue
            if not found.lstrip(" >\n").startswith(("-", "_")) and not re.search(r"\d", found):
                continue  # "Am Freitag schrieb mir der Kollege:" is text; a real reply header has a date
            start = match.start() + (len(found) - len(found.lstrip()))
            first = scan.count("\n", 0, start)
            after = scan.count("\n", 0, match.end()) + 1
            if best is None or first < best[0]:
                best = (first, max(after, first + 1))
            break
    return best


def _is_quoted(line: str) -> bool:
    return line.lstrip().startswith(">")


def strip_reply(text: str) -> str:
    """Return only what the sender wrote now: no quoted history, no signature after "-- "."""
    lines = text.replace("\r\n", "\n").split("\n")
    header = _first_header_line(lines)
    if header is not None:
        first, after = header
        before = [line for line in lines[:first] if line.strip() and not _is_quoted(line)]
        if before:
            lines = lines[:first]  # top posting: the history starts at the header
        else:
            rest = lines[after:]
            # bottom posting (Thunderbird, Apple Mail): header + quoted lines, the answer below them;
            # an Outlook "Von:/Gesendet:" block at the top with nothing above is only history.
            quoted_rest = any(_is_quoted(line) for line in rest[:5] if line.strip())
            lines = rest if quoted_rest else []
    kept: list[str] = []
    for line in lines:
        if _SIGNATURE_DELIMITER.match(line) or _MOBILE_FOOTER.match(line):
            break
        if not _is_quoted(line):
            kept.append(line)
    while kept and (not kept[-1].strip() or _RULE_LINE.match(kept[-1])):
        kept.pop()
    return _tidy(kept)


def _tidy(lines: list[str]) -> str:
    """Join lines without trailing spaces, outer blank lines or runs of blank lines."""
    text = "\n".join(line.rstrip() for line in lines).strip("\n")
    return re.sub(r"\n{3,}", "\n\n", text)

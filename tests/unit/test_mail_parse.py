"""Reading received mail: headers, kind of mail, the new text without quotes, attachments, problems."""
from __future__ import annotations

import pathlib
import subprocess
import sys
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpdesk.services.mail.parse import html_to_text, parse_message, strip_reply

ROOT = pathlib.Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "tests" / "mail_samples"
NOTIFICATION_ID = "<1764493920.48211.9081726354610293847.outbox@helpdesk.ksm>"
THREAD_ID = "<ticket.KSM-2026-000123@helpdesk.ksm>"
REPLY_ADDRESS = "helpdesk+ksm-2026-000123.3f9a1c0b7e2d@ksm.example"
QUOTED_WORDS = ("Ihr Ticket", "Guten Tag Herr", "Druckertreiber", "Von:", "From:", "schrieb", "wrote", ">")


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def parsed(name: str):
    return parse_message(sample(name))


def assert_no_quote(text: str) -> None:
    for word in QUOTED_WORDS:
        assert word not in text, f"quoted history left in the text: {word!r}\n{text}"


# --- the new text of replies ----------------------------------------------------------------


def test_outlook_german_reply_keeps_greeting_and_drops_the_von_gesendet_block():
    mail = parsed("outlook_de_reply.eml")
    assert mail.text == (
        "Hallo Frau Schulz,\n\n"
        "der Drucker druckt nach dem Neustart wieder, aber nur einseitig. "
        "Können Sie bitte noch die Duplex-Einstellung prüfen?\n\n"
        "Mit freundlichen Grüßen\n\n"
        "Max Mustermann\nLandkreis Lüneburg – Fachdienst Bauen\nTel. 04131 26-1234"
    )
    assert "Ursprüngliche Nachricht" in mail.full_text and "Ursprüngliche" not in mail.text
    assert mail.problem is None and mail.auto is None and mail.attachments == []


def test_outlook_html_alternative_gives_the_same_new_text_as_the_plain_one():
    import email
    from email.policy import compat32

    message = email.message_from_bytes(sample("outlook_de_reply.eml"), policy=compat32)
    html = next(p for p in message.walk() if p.get_content_type() == "text/html").get_payload(decode=True)
    assert strip_reply(html_to_text(html.decode("utf-8"))) == parsed("outlook_de_reply.eml").text


def test_outlook_english_reply_drops_the_from_sent_block_and_the_rule_line():
    mail = parsed("outlook_en_reply.eml")
    assert mail.text == (
        "Hi Petra,\n\nStill not working after the restart - the display shows \"Error 49.4C02\".\n"
        "Could somebody come by this afternoon?\n\nThanks,\nJane"
    )
    assert mail.cc == ["it-lead@lup.example"]


def test_gmail_reply_drops_the_wrapped_on_wrote_header_and_the_quote():
    mail = parsed("gmail_en_reply.eml")
    assert mail.text == "Hello,\n\nthanks - the printer works again. You can close the ticket.\n\nBest,\nTom"
    assert "> Guten Tag Herr Mustermann," in mail.full_text


def test_apple_mail_german_reply_drops_iphone_footer_and_quoted_attribution():
    mail = parsed("apple_mail_de_reply.eml")
    assert mail.text == (
        "Hallo Frau Schulz,\n\nleider druckt er immer noch nicht. Das Display zeigt „Papierstau Fach 2“, "
        "obwohl kein Papier drin steckt.\n\nViele Grüße\nAnna Weber"
    )
    assert "iPhone" not in mail.text


def test_apple_mail_english_reply_drops_on_at_wrote_quote():
    mail = parsed("apple_mail_en_reply.eml")
    assert mail.text == "Hi,\n\nthe new monitor arrived and works fine. Thank you!\n\nKind regards\nSam"


def test_thunderbird_bottom_posted_reply_keeps_the_answer_below_the_quote_without_signature():
    mail = parsed("thunderbird_de_reply.eml")
    assert mail.text == (
        "Hallo Frau Schulz,\n\n"
        "nach dem Neustart druckt der Drucker wieder. Die Testseite sieht gut aus, "
        "nur die Farben sind etwas blass.\n\n"  # format=flowed soft break joined
        "Mit freundlichen Grüßen\nKlaus Neumann"
    )
    assert "Michaeliskloster" in mail.full_text and "Michaeliskloster" not in mail.text


def test_reply_with_only_the_quote_has_no_text_and_says_so():
    mail = parsed("only_quoted_reply.eml")
    assert mail.text == ""
    assert mail.problem == "no_text"
    assert "Druckertreiber" in mail.full_text


@pytest.mark.parametrize("name", [
    "outlook_de_reply.eml", "outlook_en_reply.eml", "gmail_en_reply.eml", "apple_mail_de_reply.eml",
    "apple_mail_en_reply.eml", "thunderbird_de_reply.eml", "reply_with_attachments.eml",
])
def test_every_sample_reply_threads_to_our_notification_and_loses_its_quote(name):
    mail = parsed(name)
    assert_no_quote(mail.text)
    assert mail.text
    assert mail.auto is None and mail.bounce is False and mail.problem is None
    if "KSM-2026-000123" in mail.subject:
        assert mail.in_reply_to == [NOTIFICATION_ID]
        assert mail.references == [THREAD_ID, NOTIFICATION_ID]
        assert REPLY_ADDRESS in mail.to


@pytest.mark.parametrize("text, expected", [
    ("Erledigt, danke.\n\nAm 01.12.2026 um 10:00 schrieb Max Mustermann <max@lup.example>:\n> Bitte prüfen",
     "Erledigt, danke."),
    ("Passt.\n\n-----Ursprüngliche Nachricht-----\nVon: KSM Helpdesk\nGesendet: Montag, 30. November 2026 09:12\n"
     "An: Max\nBetreff: Test\n\nalter Text", "Passt."),
    ("Done.\n\n-----Original Message-----\nFrom: KSM Helpdesk\nSent: Monday, November 30, 2026 9:12 AM\n"
     "To: Max\nSubject: Test\n\nold text", "Done."),
    ("Yes.\n\nOn Mon, Dec 1, 2026 at 10:00 AM Max Mustermann <max@lup.example> wrote:\n> old", "Yes."),
    ("Danke!\n\nAm Mo., 30. Nov. 2026 um 09:12 Uhr schrieb KSM Helpdesk <\nhelpdesk@ksm.example>:\n\n> Hallo",
     "Danke!"),  # Gmail in German, the header wrapped
    ("Ja.\n\nVon meinem iPhone gesendet", "Ja."),
    ("Yes.\n\nSent from my iPhone\n\n> On 1 Dec 2026, at 10:00, X wrote:\n> old", "Yes."),
    ("Text\n\n-- \nMax Mustermann\nTel. 123", "Text"),
    ("Hallo,\nAm Freitag schrieb mir der Kollege:\nder Drucker ist kaputt.",  # no date: not a quote header
     "Hallo,\nAm Freitag schrieb mir der Kollege:\nder Drucker ist kaputt."),
    ("- Punkt eins\n- Punkt zwei\n\nViele Grüße\nAnna", "- Punkt eins\n- Punkt zwei\n\nViele Grüße\nAnna"),
    ("> Frage 1?\nAntwort 1\n> Frage 2?\nAntwort 2", "Antwort 1\nAntwort 2"),
])
def test_strip_reply_removes_quote_headers_signatures_and_mobile_footers(text, expected):
    assert strip_reply(text) == expected


# --- headers ----------------------------------------------------------------------------------


def test_addresses_are_lower_case_addr_specs_and_the_name_is_decoded():
    mail = parsed("latin1_subject.eml")
    assert mail.from_address == "j.mueller@lup.example"
    assert mail.from_name == "Jürgen Müller"
    assert mail.to == ["helpdesk@ksm.example"]
    assert mail.cc == ["p.mueller@lup.example", "ordnungsamt@lup.example"]  # "Müller, Petra" is one name


def test_iso_8859_1_subject_and_body_are_decoded_with_the_windows_dash():
    mail = parsed("latin1_subject.eml")
    assert mail.subject == "Drucker defekt – bitte prüfen"
    assert 'zeigt nur noch "Störung 13.A2". Können Sie bitte jemanden schicken?' in mail.text
    assert mail.text.endswith("Grüße aus dem Ordnungsamt\nJürgen Müller")


def test_date_becomes_aware_utc():
    assert parsed("latin1_subject.eml").date == datetime(2026, 12, 1, 7, 15, 1, tzinfo=timezone.utc)
    assert parsed("gmail_en_reply.eml").date == datetime(2026, 12, 1, 10, 15, 21, tzinfo=timezone.utc)


def test_delivered_to_keeps_the_plus_address():
    assert parsed("gmail_en_reply.eml").delivered_to == [REPLY_ADDRESS]
    assert parsed("html_only.eml").delivered_to == ["helpdesk@ksm.example"]


def test_mail_without_message_id_gets_a_stable_id_from_its_bytes():
    first, second = parsed("no_message_id.eml"), parsed("no_message_id.eml")
    assert first.message_id == second.message_id
    assert first.message_id.endswith("@no-message-id.invalid>") and first.message_id.startswith("<")
    other = parse_message(sample("no_message_id.eml") + b"\r\nZweite Zeile\r\n")
    assert other.message_id != first.message_id
    assert first.from_address == "scanner-2og@lup.example" and first.from_name == ""
    assert first.text.startswith("Geraet: MFP-2OG") and first.problem is None


def test_message_id_is_kept_as_written():
    assert parsed("gmail_en_reply.eml").message_id == (
        "<CAF=8mY9k2Lq_3xQn7Vb0RzWc4Hd+T1uJ6sE5pG8aN2oKm7fXw@mail.gmail.com>")


def test_missing_and_broken_headers_do_not_stop_the_mail():
    raw = (b"From: =?x-unknown-charset?q?M=FCller?= <Max@LUP.example>\r\n"
           b"To: not an address, \"Kaputt\" <>, ok@lup.example\r\n"
           b"Subject: =?utf-8?b?!!!kaputt?= \xe4rger mit 8bit\r\n"
           b"Date: gestern irgendwann\r\n"
           b"References: <a@x> <b@x>\r\n\tm\xfcll <a@x>\r\n"
           b"\r\nText\r\n")
    mail = parse_message(raw)
    assert mail.from_address == "max@lup.example"
    assert "ller" in mail.from_name
    assert mail.to == ["ok@lup.example"]
    assert "rger mit 8bit" in mail.subject and "\n" not in mail.subject
    assert mail.date is None
    assert mail.references == ["<a@x>", "<b@x>"]
    assert mail.text == "Text" and mail.problem is None


# --- automatic mail and bounces ---------------------------------------------------------------


def test_exchange_out_of_office_is_an_auto_reply_and_no_bounce():
    mail = parsed("exchange_ooo_de.eml")
    assert mail.auto == "auto-reply"
    assert mail.bounce is False and mail.bounced_message_ids == []  # null Return-Path, but RFC 3834 says so
    assert mail.in_reply_to == [NOTIFICATION_ID]
    assert "nicht im Büro" in mail.text


def test_dsn_bounce_reports_our_message_id_and_the_reason():
    mail = parsed("dsn_bounce.eml")
    assert mail.bounce is True and mail.auto == "bounce"
    assert mail.bounced_message_ids == ["<1764493920.48211.5550123987654321012.outbox@helpdesk.ksm>"]
    assert mail.bounce_reason == (
        "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup")
    assert mail.attachments == []  # the returned headers are no attachment
    assert "konnte nicht zugestellt werden" in mail.text


def test_postfix_bounce_reports_the_original_from_the_attached_message():
    mail = parsed("postfix_bounce.eml")
    assert mail.bounce is True and mail.auto == "bounce"
    assert mail.bounced_message_ids == ["<1764493920.48211.7771234567890123456.outbox@helpdesk.ksm>"]
    assert mail.bounce_reason == ("550 5.1.1 <h.schmidt@lup.example>: Recipient address rejected: "
                                  "User unknown in virtual mailbox table")
    assert "\n" not in mail.bounce_reason
    assert mail.attachments == []
    assert "Ihr Ticket KSM-2026-000124 wurde angelegt" not in mail.full_text  # the original is not the body


def test_plain_mailer_daemon_bounce_without_report_finds_the_id_in_the_text():
    raw = (b"From: Mail Delivery Subsystem <MAILER-DAEMON@mx.lup.example>\r\nTo: helpdesk@ksm.example\r\n"
           b"Subject: failure notice\r\nMessage-ID: <qmail.1@mx.lup.example>\r\n\r\n"
           b"Hi. This is the qmail-send program at mx.lup.example.\r\n"
           b"<x@lup.example>:\r\nSorry, no mailbox here by that name. (#5.1.1)\r\n\r\n"
           b"--- Below this line is a copy of the message.\r\n\r\n"
           b"Message-ID: <1.2.3.outbox@helpdesk.ksm>\r\nSubject: [KSM-2026-000001] Test\r\n")
    mail = parse_message(raw)
    assert mail.bounce is True and mail.bounced_message_ids == ["<1.2.3.outbox@helpdesk.ksm>"]
    assert mail.bounce_reason


def test_null_return_path_alone_makes_a_bounce():
    raw = b"Return-Path: <>\r\nFrom: system@lup.example\r\nSubject: Zustellung\r\nMessage-ID: <z@x>\r\n\r\nText\r\n"
    assert parse_message(raw).bounce is True


def test_read_receipt_is_an_automatic_mail_and_no_bounce():
    raw = (b"From: max@lup.example\r\nSubject: Gelesen: [KSM-2026-000123] Drucker\r\nMessage-ID: <r@x>\r\n"
           b"MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=disposition-notification; boundary=b\r\n"
           b"\r\n--b\r\nContent-Type: text/plain\r\n\r\nIhre Nachricht wurde gelesen.\r\n"
           b"--b\r\nContent-Type: message/disposition-notification\r\n\r\n"
           b"Final-Recipient: rfc822;max@lup.example\r\nDisposition: manual-action/MDN-sent-manually; displayed\r\n"
           b"--b--\r\n")
    mail = parse_message(raw)
    assert mail.auto == "auto-reply" and mail.bounce is False


def test_too_large_bounce_still_names_the_bounced_mail_from_its_thread_headers():
    raw = sample("dsn_bounce.eml")
    mail = parse_message(raw, max_bytes=1000)
    assert mail.problem == "too_large" and mail.bounce is True
    assert mail.bounced_message_ids == ["<1764493920.48211.5550123987654321012.outbox@helpdesk.ksm>"]


def test_mailing_list_mail_counts_as_precedence():
    mail = parsed("mailing_list.eml")
    assert mail.auto == "precedence" and mail.bounce is False
    assert mail.from_address == "j.hoffmann@lup.example"  # From wins over Sender


@pytest.mark.parametrize("headers, auto", [
    (b"Auto-Submitted: auto-generated\r\n", "auto-submitted"),
    (b"Auto-Submitted: auto-replied\r\n", "auto-reply"),
    (b"Auto-Submitted: no\r\n", None),
    (b"Precedence: bulk\r\n", "precedence"),
    (b"Precedence: junk\r\n", "precedence"),
    (b"Precedence: first-class\r\n", None),
    (b"X-Autoreply: yes\r\n", "auto-reply"),
    (b"X-Autorespond: Abwesenheit\r\n", "auto-reply"),
    (b"List-Unsubscribe: <mailto:leave@lists.example>\r\n", "precedence"),
    (b"X-Auto-Response-Suppress: All\r\n", None),  # without an out-of-office subject that is just Outlook
    (b"", None),
])
def test_automatic_mail_is_recognised_by_its_headers(headers, auto):
    raw = (b"From: a@lup.example\r\nTo: helpdesk@ksm.example\r\nSubject: Hallo\r\nMessage-ID: <m@x>\r\n"
           + headers + b"\r\nText\r\n")
    assert parse_message(raw).auto == auto


def test_out_of_office_subject_without_auto_headers_is_a_person():
    raw = (b"From: a@lup.example\r\nSubject: Automatische Antwort: wie richte ich die ein?\r\n"
           b"Message-ID: <m@x>\r\n\r\nText\r\n")
    assert parse_message(raw).auto is None


# --- HTML, attachments ------------------------------------------------------------------------


def test_html_only_mail_becomes_safe_plain_text():
    mail = parsed("html_only.eml")
    assert mail.text == (
        "Guten Tag,\n\n"
        "seit heute Morgen meldet das Fachverfahren „OK.VORSORGE“ beim Anmelden:\n"
        "Fehler 0x80070005 – Zugriff verweigert & danach stürzt es ab.\n\n"
        "Betroffen sind:\n\n"
        "- Arbeitsplatz B-2.14\n- Arbeitsplatz B-2.17\n\n"
        "Details stehen im Störungswiki (https://wiki.lup.example/it/stoerungen?id=4711&view=1). "
        "Bedingung: 3 < 5 > 2.\n\n"
        "Freundliche Grüße\nSabine Krüger\nBürgerbüro"
    )
    for hidden in ("Tracking", "nicht anzeigen", "font-family", "JavaScript", "<b>", "&amp;", "&nbsp;",
                   "Meldung aus dem"):
        assert hidden not in mail.text
    assert mail.from_name == "Sabine Krüger" and mail.subject == "Fachverfahren stürzt beim Anmelden ab"


def test_html_to_text_keeps_line_breaks_and_links():
    html = ('<div>Zeile 1<br>Zeile 2</div><p>Absatz <a href="https://x.example/t?a=1&amp;b=2">hier</a> '
            'und <a href="mailto:it@lup.example">it@lup.example</a></p><ol><li>eins</li><li>zwei</li></ol>'
            '<a href="javascript:alert(1)">Klick</a>')
    assert html_to_text(html) == (
        "Zeile 1\nZeile 2\n\nAbsatz hier (https://x.example/t?a=1&b=2) und it@lup.example\n\n"
        "- eins\n- zwei\n\nKlick")


def test_real_attachments_are_returned_with_decoded_names_but_not_the_body_parts():
    mail = parsed("reply_with_attachments.eml")
    assert [(a.filename, a.content_type) for a in mail.attachments] == [
        ("Anzeige Drucker.png", "image/png"),  # inline image with a filename
        ("Fehlerprotokoll Drücker 2.OG.pdf", "application/pdf"),  # RFC 2231 UTF-8 filename
    ]
    png, pdf = mail.attachments
    assert png.data.startswith(b"\x89PNG\r\n\x1a\n")
    assert pdf.data.startswith(b"%PDF-1.4") and pdf.data.rstrip().endswith(b"%%EOF")
    assert mail.text == ("Hallo Frau Schulz,\n\nanbei das Fehlerprotokoll als PDF und ein Foto der Anzeige.\n\n"
                         "Gruß\nKlaus Neumann")


def test_attachment_names_never_carry_a_path_and_outlook_encoded_words_are_decoded():
    raw = (b"From: a@lup.example\r\nMessage-ID: <m@x>\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
           b"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nAnbei.\r\n"
           b"--b\r\nContent-Type: application/octet-stream; name=\"=?utf-8?B?QsO8cm8uZG9jeA==?=\"\r\n"
           b"Content-Disposition: attachment; filename=\"=?utf-8?B?QsO8cm8uZG9jeA==?=\"\r\n"
           b"Content-Transfer-Encoding: base64\r\n\r\nUEsDBA==\r\n"
           b"--b\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename=\"..\\\\..\\\\boot.ini\"\r\n"
           b"\r\n[boot]\r\n"
           b"--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment\r\n\r\n%PDF\r\n--b--\r\n")
    mail = parse_message(raw)
    assert [(a.filename, a.data) for a in mail.attachments] == [
        ("Büro.docx", b"PK\x03\x04"), ("boot.ini", b"[boot]"), ("anhang.pdf", b"%PDF")]
    assert mail.text == "Anbei."


def test_attachment_only_mail_has_no_problem():
    raw = (b"From: a@lup.example\r\nMessage-ID: <m@x>\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: application/pdf; name=scan.pdf\r\nContent-Disposition: attachment; filename=scan.pdf\r\n"
           b"Content-Transfer-Encoding: base64\r\n\r\nJVBERg==\r\n")
    mail = parse_message(raw)
    assert mail.text == "" and mail.problem is None
    assert [(a.filename, a.data) for a in mail.attachments] == [("scan.pdf", b"%PDF")]


# --- problems ---------------------------------------------------------------------------------


def test_too_large_mail_keeps_its_headers_but_the_body_is_not_read():
    raw = sample("reply_with_attachments.eml")
    mail = parse_message(raw, max_bytes=len(raw) - 1)
    assert mail.problem == "too_large"
    assert mail.message_id == "<7d2c9e41-0a5b-4c3f-8e6d-1f2a3b4c5d6e@lup.example>"
    assert mail.from_address == "klaus.neumann@lup.example"
    assert mail.in_reply_to == [NOTIFICATION_ID]
    assert mail.text == "" and mail.full_text == "" and mail.attachments == []
    assert parse_message(raw, max_bytes=len(raw)).problem is None


def test_garbage_is_unparsable():
    mail = parsed("garbage.eml")
    assert mail.problem == "unparsable"
    assert mail.message_id.endswith("@no-message-id.invalid>")
    assert mail.from_address is None and mail.text == ""


@pytest.mark.parametrize("raw", [b"", b"\x00" * 50, b"nur ein Satz ohne Kopfzeilen", b"\r\n\r\n\r\n"])
def test_empty_and_headerless_input_is_unparsable(raw):
    assert parse_message(raw).problem == "unparsable"


def test_the_parser_module_is_pure():
    path = ROOT / "helpdesk" / "services" / "mail" / "parse.py"
    code = ("import importlib.util, sys; spec = importlib.util.spec_from_file_location('p', %r); "
            "m = importlib.util.module_from_spec(spec); sys.modules['p'] = m; spec.loader.exec_module(m); "
            "print(sorted(n for n in ('flask', 'sqlalchemy', 'helpdesk') if n in sys.modules))" % str(path))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


# --- never raises -----------------------------------------------------------------------------

# Examples stay in memory: the suite writes no .hypothesis folder.
FUZZ = settings(max_examples=150, deadline=None, database=None)
SAMPLE_BYTES = [p.read_bytes() for p in sorted(SAMPLES.glob("*.eml"))]


def _check(mail) -> None:
    for value in (mail.message_id, mail.from_name, mail.subject, mail.text, mail.full_text):
        assert isinstance(value, str) and "\x00" not in value
        value.encode("utf-8")  # storable: no lone surrogates
    assert mail.message_id.startswith("<") and mail.message_id.endswith(">")
    assert mail.problem in (None, "too_large", "no_text", "unparsable")
    assert mail.date is None or mail.date.tzinfo is not None
    assert all(isinstance(a.data, bytes) and "/" not in a.filename for a in mail.attachments)


@FUZZ
@given(st.binary(max_size=4000))
def test_random_bytes_never_raise(raw):
    _check(parse_message(raw))


@FUZZ
@given(st.sampled_from(SAMPLE_BYTES), st.lists(st.tuples(st.integers(0, 10**6), st.binary(max_size=40),
                                                        st.integers(0, 60)), max_size=8))
def test_mutated_samples_never_raise(raw, edits):
    data = bytearray(raw)
    for position, insert, delete in edits:
        position %= max(len(data), 1)
        data[position:position + delete] = insert
    _check(parse_message(bytes(data), max_bytes=len(raw)))


@FUZZ
@given(st.text(max_size=2000))
def test_random_header_and_html_text_never_raise(text):
    raw = ("From: " + text[:200] + "\r\nSubject: " + text + "\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
           + text).encode("utf-8", "surrogatepass")
    _check(parse_message(raw))
    assert isinstance(strip_reply(text), str)


def test_a_mail_forwarded_to_the_helpdesk_keeps_the_forwarded_request():
    raw = ("From: Max <max@lup.example>\r\nTo: helpdesk@ksm.example\r\nSubject: WG: Fehler im Fachverfahren\r\n"
           "Message-ID: <fw@lup.example>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
           "Bitte prüfen, siehe unten.\r\n\r\n"
           "-----Ursprüngliche Nachricht-----\r\nVon: Erika <erika@lup.example>\r\n"
           "Gesendet: Montag, 30. November 2026 09:12\r\nAn: Max\r\nBetreff: Fehler im Fachverfahren\r\n\r\n"
           "Beim Speichern kommt Fehler 4711.\r\n").encode("utf-8")
    mail = parse_message(raw)
    assert mail.text.startswith("Bitte prüfen, siehe unten.")
    assert mail.text.endswith("Beim Speichern kommt Fehler 4711.")

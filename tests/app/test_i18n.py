"""The English interface: switching languages, per-user locale, emails in the recipient's language, a complete catalog."""
from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from sqlalchemy import select

from helpdesk.config import ROOT
from helpdesk.extensions import babel, db
from helpdesk.models import OutboxMessage
from tests.builders import make_category, make_team, make_tenant, make_ticket, make_user

CATALOG = ROOT / "translations" / "en" / "LC_MESSAGES" / "messages.po"
UPDATE_HINT = "run the commands at the top of babel.cfg (extract, update) and translate the new entries"
PLACEHOLDER = re.compile(r"%(?:\([a-z_]+\))?[-#0 +]*\d*(?:\.\d+)?[sdif%]")


def _read_catalog():
    with CATALOG.open("rb") as fh:
        return read_po(fh, locale="en")


def _texts(value) -> tuple:
    """Return a singular msgid/msgstr or all plural forms as a tuple."""
    return value if isinstance(value, (tuple, list)) else (value,)


def compile_catalog(po: Path = CATALOG) -> None:
    """Write messages.mo next to messages.po when it is missing or older (what `make translations` does)."""
    mo = po.with_suffix(".mo")
    if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
        return
    with po.open("rb") as fh:
        catalog = read_po(fh, locale=po.parent.parent.name)
    # Write to a temporary file and rename: another test run may compile at the same moment.
    handle, tmp = tempfile.mkstemp(dir=po.parent, suffix=".mo.tmp")
    with os.fdopen(handle, "wb") as out:
        write_mo(out, catalog)
    os.replace(tmp, mo)


@pytest.fixture(scope="module", autouse=True)
def english_catalog():
    """Compile the English catalog without `make`, and drop translations cached before it existed."""
    compile_catalog()
    # Flask-Babel caches loaded catalogs on the process-wide Babel instance (a cached
    # property, across apps): an earlier test may have cached "en" before the .mo existed.
    domain = vars(babel).get("domain_instance")
    if domain is not None:
        domain.cache.clear()


@pytest.fixture
def desk(app):
    """A fallback team and a category, enough to file tickets."""
    make_team("service-desk", "Service Desk", fallback=True)
    return make_category("Hardware")


def _text(response) -> str:
    return response.get_data(as_text=True)


def test_login_page_is_german_by_default(client):
    page = _text(client.get("/login"))

    assert '<html lang="de">' in page
    assert "Anmelden" in page
    assert "Log in" not in page


def test_visitor_can_switch_the_login_page_to_english(client):
    response = client.post_form("/account/language", {"lang-locale": "en", "next": "/login"})
    assert response.status_code == 302

    page = _text(client.get("/login"))
    assert '<html lang="en">' in page
    assert "Log in" in page
    assert "Email address" in page
    assert "Anmelden" not in page


def test_visitor_can_switch_back_to_german(client):
    client.post_form("/account/language", {"lang-locale": "en"})
    client.post_form("/account/language", {"lang-locale": "de"})

    assert "Anmelden" in _text(client.get("/login"))


def test_requester_with_english_locale_sees_the_portal_in_english(client, desk):
    requester = make_user(tenant=make_tenant(), locale="en")
    make_ticket(requester, category=desk, subject="Drucker druckt nicht")
    client.login(requester)

    page = _text(client.get("/portal/tickets"))

    assert "My tickets" in page
    assert "New ticket" in page
    assert "Log out" in page
    assert "Meine Tickets" not in page
    assert "Drucker druckt nicht" in page  # user content is never translated


def test_requester_with_german_locale_sees_the_portal_in_german(client, desk):
    requester = make_user(tenant=make_tenant(), locale="de")
    client.login(requester)

    page = _text(client.get("/portal/tickets"))

    assert "Meine Tickets" in page
    assert "My tickets" not in page


def test_confirmation_email_is_written_in_the_recipients_language(app, desk):
    tenant = make_tenant()
    english = make_user(tenant=tenant, locale="en", name="Jane Doe")
    german = make_user(tenant=tenant, locale="de", name="Erika Muster")

    make_ticket(english, category=desk, subject="Scanner defekt")
    make_ticket(german, category=desk, subject="Scanner defekt")

    to_english = db.session.scalars(select(OutboxMessage).where(OutboxMessage.recipient == english.email)).one()
    to_german = db.session.scalars(select(OutboxMessage).where(OutboxMessage.recipient == german.email)).one()
    assert "Your ticket has been received: Scanner defekt" in to_english.subject
    assert to_english.body_text.startswith("Hello Jane Doe,")
    assert "Kind regards" in to_english.body_text
    assert "Ihr Ticket wurde erfasst: Scanner defekt" in to_german.subject
    assert to_german.body_text.startswith("Guten Tag Erika Muster,")


def test_every_catalog_entry_is_translated_and_not_fuzzy():
    catalog = _read_catalog()

    untranslated = [m.id for m in catalog if m.id and not all(_texts(m.string))]
    fuzzy = [m.id for m in catalog if m.id and m.fuzzy]

    assert len(catalog) > 100
    assert not untranslated, f"untranslated entries in {CATALOG.name}: {untranslated}"
    assert not fuzzy, f"fuzzy entries in {CATALOG.name} (check and remove the flag): {fuzzy}"


def test_translations_keep_every_placeholder():
    catalog = _read_catalog()

    def placeholders(text) -> list[str]:
        return sorted({p for t in _texts(text) for p in PLACEHOLDER.findall(t)})

    broken = [(m.id, m.string) for m in catalog if m.id and m.string and placeholders(m.id) != placeholders(m.string)]
    assert not broken, f"placeholders differ between msgid and msgstr: {broken}"


def test_every_ui_string_in_the_source_is_in_the_catalog():
    with (ROOT / "babel.cfg").open() as fh:
        method_map, options_map = parse_mapping_cfg(fh, "babel.cfg")
    keywords = {**DEFAULT_KEYWORDS, "_l": None, "lazy_gettext": None}
    in_source = {
        message if isinstance(message, str) else message[0]
        for _, _, message, _, _ in extract_from_dir(str(ROOT), method_map, options_map, keywords=keywords)
    }
    in_catalog = {m.id if isinstance(m.id, str) else m.id[0] for m in _read_catalog() if m.id}

    missing = sorted(in_source - in_catalog)
    assert not missing, f"{len(missing)} new UI strings are not in the English catalog; {UPDATE_HINT}: {missing}"

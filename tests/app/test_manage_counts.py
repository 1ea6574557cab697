"""The administration start page counts boundedly: a capped count ("mehr als 1.000"), never a whole table."""
from __future__ import annotations

import html
import re

from sqlalchemy import event

from helpdesk.extensions import db
from helpdesk.manage import routes as manage_routes
from tests.builders import make_team, make_tenant, make_user


def _count_card(body: str, heading: str) -> str:
    match = re.search(rf">{heading}</a></h2>\s*<p class=\"count\">([^<]+)</p>", body)
    assert match, heading
    return match.group(1).strip()


def test_account_count_is_exact_below_the_cap_and_says_more_than_above_it(client, app, monkeypatch):
    make_team("service-desk", "Service Desk", fallback=True)
    admin = make_user("admin", email="admin@ksm.example")
    lup = make_tenant("lup", "Landkreis Ludwigslust-Parchim")
    for _ in range(5):
        make_user(tenant=lup)
    client.login(admin)

    body = html.unescape(client.get("/manage/").get_data(as_text=True))
    assert _count_card(body, "Konten") == "6"

    monkeypatch.setattr(manage_routes, "INDEX_COUNT_CAP", 4)
    statements = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        body = html.unescape(client.get("/manage/").get_data(as_text=True))
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    assert _count_card(body, "Konten") == "mehr als 4"
    assert _count_card(body, "Mandanten") == "1"
    # Every count of the page stops after cap + 1 rows.
    counts = [s for s in statements if "count(" in s.lower()]
    assert counts and all("LIMIT" in s.upper() for s in counts)

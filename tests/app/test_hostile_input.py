"""Hostile input answers a clear 4xx, never a 500: page numbers, ids, deep JSON, surrogates, odd multipart."""
from __future__ import annotations

import json
from urllib.parse import quote_from_bytes

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from helpdesk.extensions import db
from helpdesk.models import Attachment, Ticket
from helpdesk.services import api_tokens
from tests.app.test_sla_workflow import berlin, file
from tests.builders import make_user

HUGE = "99999999999999999999"


@pytest.fixture
def api(world, app):
    """A ticket of the world's requester and a bearer header per role (rate limit out of the way)."""
    app.config["API_RATE_LIMIT"] = "100000 per minute"
    ticket = file(world, "2026-03-05 09:00")
    headers = {}
    for role in ("requester", "agent"):
        _token, secret = api_tokens.create_token(world[role], name="hostile", expires_at=None,
                                                 now=berlin("2026-03-05 09:00"))
        headers[role] = {"Authorization": f"Bearer {secret}"}
    return {"ticket": ticket, "headers": headers, "category": world["category"]}


def _tickets() -> int:
    return db.session.scalar(select(func.count()).select_from(Ticket))


def _problem(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)[:2000]
    assert response.mimetype == "application/problem+json"
    body = response.get_json(force=True)
    assert body["detail"]
    return body


# --- page numbers and ids in query strings -------------------------------------------------------


@pytest.mark.parametrize("role, url", [
    ("requester", "/portal/tickets"),
    ("agent", "/agent/queue"),
])
def test_a_page_number_beyond_any_list_says_the_page_does_not_exist(world, client, role, url):
    client.login(world[role])
    response = client.get(f"{url}?page={HUGE}")
    assert response.status_code == 404
    assert f"Die Seite {HUGE} gibt es nicht." in response.get_data(as_text=True)


@pytest.mark.parametrize("value", ["abc", "0", "-3", "1.5"])
def test_a_page_number_that_is_no_positive_whole_number_is_refused_with_400(world, client, value):
    client.login(world["requester"])
    response = client.get(f"/portal/tickets?page={value}")
    assert response.status_code == 400
    assert "Die Seitenzahl muss eine ganze Zahl ab 1 sein." in response.get_data(as_text=True)


def test_a_page_number_in_range_still_pages(world, client):
    client.login(world["requester"])
    assert client.get("/portal/tickets?page=1").status_code == 200
    assert client.get("/portal/tickets").status_code == 200


def test_user_list_filtered_by_a_tenant_id_too_large_for_the_database_is_refused_with_400(world, client):
    client.login(make_user("admin"))
    response = client.get(f"/manage/users?tenant={HUGE}")
    assert response.status_code == 400
    assert "Diesen Mandanten gibt es nicht." in response.get_data(as_text=True)
    assert client.get(f"/manage/users?tenant={world['tenant'].id}").status_code == 200
    assert client.get("/manage/users?tenant=ksm").status_code == 200


def test_whatif_for_a_tenant_id_too_large_for_the_database_asks_for_a_tenant(world, client):
    client.login(make_user("service_manager"))
    response = client.get(f"/reports/whatif?tenant={HUGE}")
    assert response.status_code == 422
    assert "Bitte wählen Sie einen Mandanten." in response.get_data(as_text=True)


# --- JSON bodies of the API ----------------------------------------------------------------------


def _deep(depth: int) -> str:
    return '{"subject": ' + "[" * depth + "]" * depth + "}"


def test_json_nested_a_thousand_deep_is_refused_with_a_400_problem(world, client, api):
    headers = {**api["headers"]["agent"], "Content-Type": "application/json"}
    for method, url in (("POST", "/api/v1/tickets"), ("PATCH", f"/api/v1/tickets/{api['ticket'].number}")):
        body = _problem(client.open(url, method=method, data=_deep(1000), headers=headers), 400)
        assert "verschachtelt" in body["detail"]
    with_key = {**headers, "Idempotency-Key": "deep-1"}
    _problem(client.post("/api/v1/tickets", data=_deep(1000), headers=with_key), 400)
    assert _tickets() == 1


def test_a_lone_surrogate_in_a_subject_is_refused_with_a_400_problem(world, client, api):
    raw = json.dumps({"subject": "PLACEHOLDER", "description": "Text", "category_id": api["category"].id})
    raw = raw.replace("PLACEHOLDER", "a\\ud800b")
    headers = {**api["headers"]["requester"], "Content-Type": "application/json"}
    body = _problem(client.post("/api/v1/tickets", data=raw, headers=headers), 400)
    assert "Surrogat" in body["detail"]
    body = _problem(client.patch(f"/api/v1/tickets/{api['ticket'].number}", data='{"reason": "\\udfff"}',
                                 headers={**api["headers"]["agent"], "Content-Type": "application/json"}), 400)
    assert _tickets() == 1
    # A proper pair (an emoji written as two escapes) is text like any other.
    pair = raw.replace("a\\ud800b", "Drucker \\ud83d\\udda8")
    created = client.post("/api/v1/tickets", data=pair, headers=headers)
    assert created.status_code == 201, created.get_data(as_text=True)
    assert created.get_json()["subject"] == "Drucker \U0001f5a8"


def _multipart(boundary: str, *parts: tuple[str, str]) -> bytes:
    return ("".join(f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n{content}\r\n"
                    for disposition, content in parts) + f"--{boundary}--\r\n").encode()


def test_multipart_parts_without_a_name_in_an_idempotent_upload_are_ignored_not_a_500(world, client, api):
    url = f"/api/v1/tickets/{api['ticket'].number}/attachments"
    headers = {**api["headers"]["requester"], "Idempotency-Key": "upload-1",
               "Content-Type": "multipart/form-data; boundary=hostile"}
    payload = _multipart("hostile", ('form-data; filename="ohne-name.txt"', "weg"), ("form-data", "wert"),
                         ('form-data; name="file"; filename="protokoll.txt"', "hallo"))
    first = client.post(url, data=payload, headers=headers)
    assert first.status_code == 201, first.get_data(as_text=True)
    assert [a["filename"] for a in first.get_json()] == ["protokoll.txt"]
    again = client.post(url, data=payload, headers=headers)
    assert again.status_code == 201 and again.get_json() == first.get_json()
    only_nameless = _multipart("hostile", ('form-data; filename="a.txt"', "x"), ('form-data; filename="b.txt"', "y"))
    body = _problem(client.post(url, data=only_nameless, headers={**headers, "Idempotency-Key": "upload-2"}), 422)
    assert "file" in body["errors"]
    assert db.session.scalar(select(func.count()).select_from(Attachment)) == 1


# --- generated input -----------------------------------------------------------------------------

# Text as hostile clients send it: lone surrogates, NUL and other control characters, long runs.
HOSTILE_TEXT = st.one_of(
    st.text(max_size=30),
    st.text(alphabet=st.sampled_from(["a", "\x00", "\ud800", "\udfff", "\u202e", "\n", "'", '"', "%"]), max_size=12),
    st.sampled_from(["", " ", "a" * 5000, "\ud83d\udda8", "null", "[]", "{}", "1e999"]),
)
HOSTILE_NUMBER = st.one_of(
    st.integers(), st.sampled_from([0, -1, 2**31, 2**63, 10**30, -(10**30)]),
    st.floats(allow_nan=False, allow_infinity=False),
)
SCALARS = st.one_of(st.none(), st.booleans(), HOSTILE_NUMBER, HOSTILE_TEXT)
JSON_VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(HOSTILE_TEXT, inner, max_size=3)), max_leaves=8)
FIELDS = ["subject", "description", "category_id", "impact", "urgency", "requester_email", "requester_id",
          "team_id", "assignee_id", "priority", "reason", "status", "body", "internal"]
BODIES = st.one_of(
    st.dictionaries(st.sampled_from(FIELDS), JSON_VALUES, max_size=6),
    JSON_VALUES,
    st.integers(min_value=1, max_value=3000).map(_deep),
)
# Query strings as raw bytes on the wire: a surrogate arrives as its (invalid) UTF-8 bytes %ED%A0%80.
QUERY_VALUES = st.one_of(HOSTILE_TEXT.map(lambda t: quote_from_bytes(t.encode("utf-8", "surrogatepass"))),
                         HOSTILE_NUMBER.map(str))
QUERIES = st.lists(st.tuples(st.sampled_from(["status", "priority", "team", "tenant", "category", "updated_since",
                                               "cursor", "limit", "sort"]), QUERY_VALUES), max_size=4).map(
    lambda pairs: "&".join(f"{name}={value}" for name, value in pairs))


def _encode(body) -> str:
    return body if isinstance(body, str) and body.startswith('{"subject": [') else json.dumps(body)


def test_no_generated_body_or_query_makes_the_ticket_api_answer_a_server_error(world, client, api):
    number = api["ticket"].number
    keys = iter(f"k-{n}" for n in range(100000))

    @settings(max_examples=60, deadline=None, database=None, derandomize=True,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(role=st.sampled_from(["requester", "agent"]), body=BODIES, query=QUERIES, idempotent=st.booleans())
    def check(role, body, query, idempotent):
        headers = {**api["headers"][role], "Content-Type": "application/json"}
        if idempotent:
            headers["Idempotency-Key"] = next(keys)
        data = _encode(body)
        for method, url in (("POST", "/api/v1/tickets"), ("PATCH", f"/api/v1/tickets/{number}"),
                            ("POST", f"/api/v1/tickets/{number}/comments")):
            response = client.open(url, method=method, data=data, headers=headers)
            assert response.status_code < 500, (method, url, data[:300], response.get_data(as_text=True)[:500])
        response = client.get("/api/v1/tickets", query_string=query, headers=api["headers"][role])
        assert response.status_code < 500, (query, response.get_data(as_text=True)[:500])

    check()


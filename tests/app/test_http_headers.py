"""Headers of private answers: nothing is cached, and uploaded files never run in the helpdesk's origin."""
from __future__ import annotations

import io

import pytest

from helpdesk.services import api_tokens
from tests.app.test_sla_workflow import berlin, file
from tests.builders import make_user

SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(document.cookie)</script></svg>'
HTML = b"<html><body><script>alert(document.cookie)</script></body></html>"


@pytest.fixture
def ticket(world):
    return file(world, "2026-03-05 09:00")


def _bearer(user) -> dict:
    _token, secret = api_tokens.create_token(user, name="headers", expires_at=None, now=berlin("2026-03-05 09:00"))
    return {"Authorization": f"Bearer {secret}"}


def _upload(client, ticket, headers, name: str, data: bytes, content_type: str) -> dict:
    response = client.post(f"/api/v1/tickets/{ticket.number}/attachments", headers=headers,
                           content_type="multipart/form-data",
                           data={"file": (io.BytesIO(data), name, content_type)})
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()[0]


def _no_store(response) -> None:
    assert response.status_code == 200, (response.request.path, response.status_code)
    assert response.headers.get("Cache-Control") == "no-store", (response.request.path, response.headers)
    response.close()


def test_private_pages_exports_api_answers_and_downloads_are_never_stored_by_a_cache(world, client, app, ticket):
    requester_api = _bearer(world["requester"])
    item = _upload(client, ticket, requester_api, "protokoll.txt", b"log", "text/plain")

    client.login(world["requester"])
    _no_store(client.get("/portal/tickets"))
    _no_store(client.get(f"/portal/tickets/{ticket.number}"))
    _no_store(client.get(f"/portal/attachments/{item['id']}"))

    agent = app.test_client()
    agent.login(world["agent"])
    _no_store(agent.get("/agent/queue"))
    _no_store(agent.get(f"/agent/attachments/{item['id']}"))

    manager = app.test_client()
    manager.login(make_user("service_manager"))
    _no_store(manager.get(f"/reports/{world['tenant'].slug}/report.csv?kind=month&year=2026&number=3"))

    _no_store(client.get("/api/v1/tickets", headers=requester_api))
    _no_store(client.get(item["content_url"], headers=requester_api))


def test_static_files_stay_cacheable(client):
    response = client.get("/static/app.css")
    assert response.status_code == 200
    assert "no-store" not in (response.headers.get("Cache-Control") or "")
    response.close()


@pytest.mark.parametrize("name, data, content_type", [
    ("bild.svg", SVG, "image/svg+xml"),
    ("seite.html", HTML, "text/html"),
    ("seite.xhtml", HTML, "application/xhtml+xml"),
    ("skript.js", b"alert(1)", "text/javascript"),
])
def test_uploaded_active_files_are_sent_as_sandboxed_opaque_downloads_everywhere(world, client, app, ticket,
                                                                                 name, data, content_type):
    requester_api = _bearer(world["requester"])
    item = _upload(client, ticket, requester_api, name, data, content_type)
    client.login(world["requester"])
    agent = app.test_client()
    agent.login(world["agent"])
    downloads = {
        "portal": client.get(f"/portal/attachments/{item['id']}"),
        "agent": agent.get(f"/agent/attachments/{item['id']}"),
        "api": client.get(item["content_url"], headers=requester_api),
    }
    for where, response in downloads.items():
        assert response.status_code == 200, where
        assert response.data == data, where
        assert response.mimetype == "application/octet-stream", (where, response.mimetype)
        assert response.headers["Content-Disposition"].startswith("attachment"), where
        assert response.headers["Content-Security-Policy"].startswith("sandbox"), where
        assert response.headers["X-Content-Type-Options"] == "nosniff", where
        response.close()


def test_passive_files_keep_their_type(world, client, ticket):
    requester_api = _bearer(world["requester"])
    for name, content_type in (("scan.pdf", "application/pdf"), ("foto.png", "image/png"), ("notiz.txt", "text/plain")):
        item = _upload(client, ticket, requester_api, name, b"bytes", content_type)
        response = client.get(item["content_url"], headers=requester_api)
        assert response.mimetype == content_type
        assert response.headers["Content-Disposition"].startswith("attachment")
        response.close()

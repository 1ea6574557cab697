"""Refuse request input that the database cannot store or the parsers cannot bear, before any view runs."""
from __future__ import annotations

import json
import re

from flask import Request
from flask_babel import gettext as _

MAX_JSON_DEPTH = 32  # no body of this app nests more than a few levels
# NUL: PostgreSQL text cannot hold it. Lone UTF-16 surrogates (JSON "\ud800"): no database driver can encode them.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def unstorable(text: str) -> bool:
    """Return True if `text` holds a NUL or a lone surrogate (characters no text column can store)."""
    return bool(_UNSTORABLE.search(text))


def _json_problem(value) -> str | None:
    """Walk a parsed JSON value without recursion; name the first unusable depth or string."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return _("Der JSON-Inhalt ist zu tief verschachtelt (höchstens %(depth)d Ebenen).", depth=MAX_JSON_DEPTH)
        if isinstance(item, str):
            if unstorable(item):
                return _stored_text_message()
        elif isinstance(item, dict):
            stack.extend((key, depth) for key in item)
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
    return None


def _stored_text_message() -> str:
    return _("Die Anfrage enthält Zeichen, die nicht gespeichert werden können "
             "(NUL-Zeichen oder einzelne UTF-16-Surrogate).")


def input_problem(request: Request) -> str | None:
    """Return why the request's path, query, form or JSON body is unusable, else None."""
    values = [request.path, *request.args.keys(), *request.args.values()]
    if request.method == "POST" and request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        values += [value for key, value in request.form.items(multi=True)] + [key or "" for key in request.form]
    if any(unstorable(value) for value in values):
        return _stored_text_message()
    if request.is_json and request.content_length != 0:
        try:
            value = json.loads(request.get_data(cache=True))
        except RecursionError:
            return _("Der JSON-Inhalt ist zu tief verschachtelt (höchstens %(depth)d Ebenen).", depth=MAX_JSON_DEPTH)
        except ValueError:
            return None  # not JSON at all: the API's parser answers that with its own 400 naming "body"
        return _json_problem(value)
    return None

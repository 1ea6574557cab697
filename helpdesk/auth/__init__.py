"""Login, logout, own password and language."""
from flask import Blueprint

bp = Blueprint("auth", __name__)

from helpdesk.auth import routes, token_routes  # noqa: E402,F401

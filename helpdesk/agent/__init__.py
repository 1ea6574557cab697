"""The agent blueprint."""
from flask import Blueprint

bp = Blueprint("agent", __name__)

from helpdesk.agent import mail_routes, routes  # noqa: E402,F401

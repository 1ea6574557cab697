"""The manage blueprint."""
from flask import Blueprint

bp = Blueprint("manage", __name__)

from helpdesk.manage import mailbox_routes, routes, sla_routes  # noqa: E402,F401

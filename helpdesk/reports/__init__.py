"""The reports blueprint: SLA situation now (and, later, service level reports)."""
from flask import Blueprint

bp = Blueprint("reports", __name__)

from helpdesk.reports import routes  # noqa: E402,F401

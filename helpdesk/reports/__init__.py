"""The reports blueprint: SLA situation now (and, later, service level reports)."""
from flask import Blueprint

bp = Blueprint("reports", __name__)

from helpdesk.reports import routes  # noqa: E402,F401
from helpdesk.reports import report_routes  # noqa: E402,F401
from helpdesk.reports import whatif_routes  # noqa: E402,F401

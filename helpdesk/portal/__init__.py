"""The portal blueprint."""
from flask import Blueprint

bp = Blueprint("portal", __name__)

from helpdesk.portal import routes  # noqa: E402,F401

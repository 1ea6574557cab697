"""Routes of the manage blueprint."""
from helpdesk.manage import bp  # noqa: F401

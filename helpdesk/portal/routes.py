"""Routes of the portal blueprint."""
from helpdesk.portal import bp  # noqa: F401

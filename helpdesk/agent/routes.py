"""Routes of the agent blueprint."""
from helpdesk.agent import bp  # noqa: F401

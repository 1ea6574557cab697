"""Import every model so Alembic and the app see the whole schema."""
from helpdesk.models.api import ApiToken, IdempotencyRecord
from helpdesk.models.outbox import OutboxMessage
from helpdesk.models.search import TicketSearch
from helpdesk.models.sla import Calendar, CalendarClosure, Escalation, SlaClock, SlaPolicy, SlaPolicyVersion
from helpdesk.models.tenancy import Category, RoutingRule, Team, Tenant, team_members
from helpdesk.models.tickets import Attachment, Comment, Ticket, TicketCounter, TicketEvent
from helpdesk.models.users import User

__all__ = [
    "ApiToken", "IdempotencyRecord",
    "Attachment", "Calendar", "CalendarClosure", "Category", "Escalation", "SlaClock", "SlaPolicy",
    "SlaPolicyVersion", "Comment", "OutboxMessage", "RoutingRule", "Team", "Tenant",
    "Ticket", "TicketCounter", "TicketEvent", "TicketSearch", "User", "team_members",
]

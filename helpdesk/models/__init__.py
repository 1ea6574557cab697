"""Import every model so Alembic and the app see the whole schema."""
from helpdesk.models.api import ApiToken, IdempotencyRecord
from helpdesk.models.mail import InboundMail, TenantMailDomain
from helpdesk.models.mailbox import MailboxStatus
from helpdesk.models.outbox import OutboxMessage
from helpdesk.models.rollups import ReportMonthRollup
from helpdesk.models.search import TicketSearch
from helpdesk.models.sla import Calendar, CalendarClosure, Escalation, SlaClock, SlaPolicy, SlaPolicyVersion
from helpdesk.models.tenancy import Category, RoutingRule, Team, Tenant, team_members
from helpdesk.models.tickets import Attachment, Comment, Ticket, TicketCounter, TicketEvent
from helpdesk.models.users import User
from helpdesk.models.watchers import TicketWatcher

__all__ = [
    "ApiToken", "IdempotencyRecord", "InboundMail", "MailboxStatus", "TenantMailDomain",
    "Attachment", "Calendar", "CalendarClosure", "Category", "Escalation", "SlaClock", "SlaPolicy",
    "SlaPolicyVersion", "Comment", "OutboxMessage", "ReportMonthRollup", "RoutingRule", "Team", "Tenant",
    "Ticket", "TicketCounter", "TicketEvent", "TicketSearch", "TicketWatcher", "User", "team_members",
]

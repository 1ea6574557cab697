"""Per-month report figures (ReportMonthRollup), kept exact in the transaction of every change.

What a row counts is defined in helpdesk.models.rollups (the definitions of helpdesk.services.reports).
Keeping them exact: every flush that changes a figure-moving column of a ticket (tenant, created_at,
status, resolved_at, team, category) or of an SLA clock (target, priority, decided_at, breached_at,
outcome; new and deleted rows) reads, before the flush, what those tickets contributed, and after
it what they contribute now, and adds the difference to the rollups in one upsert (rows sorted, so
concurrent transactions lock them in the same order; additions commute, so they stay exact under
READ COMMITTED). Ticket create, status and priority changes, reopening, transfers, category changes
and the SLA sweep's decided and breached clocks all go through the ORM, so they are all covered
without each service having to remember it. Writes that bypass the ORM (bulk Core inserts of the
benchmarks, a data repair) call `rebuild` afterwards.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import and_, bindparam, delete, event, or_, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import get_history

from helpdesk.models import ReportMonthRollup, SlaClock, Ticket
from helpdesk.models.sla import TARGETS

BERLIN = ZoneInfo("Europe/Berlin")
DONE_STATUSES = ("resolved", "closed")
MEASURES = ("opened", "resolved", "met", "breached", "backlog_change")
# With the relationships: `ticket.team = team` sets team_id only during the flush, after before_flush.
_TICKET_COLUMNS = ("tenant_id", "created_at", "status", "resolved_at", "team_id", "category_id",
                   "tenant", "team", "category")
_CLOCK_COLUMNS = ("ticket_id", "tenant_id", "target", "priority", "decided_at", "breached_at", "outcome")
_PENDING = "report_rollups_pending"
_CHUNK = 5000  # ticket ids per read; a tenth of it rows per upsert (11 bind parameters a row)
_table = ReportMonthRollup.__table__
_KEY = ("tenant_id", "month", "team_id", "category_id", "priority", "target")

Key = tuple[int, date, int, int, int, str]


def month_of(moment: datetime) -> date:
    """Return the first day of the Berlin calendar month a UTC moment falls in."""
    local = moment.astimezone(BERLIN)
    return date(local.year, local.month, 1)


def _facts_query(ticket_ids):
    counted = and_(SlaClock.ticket_id == Ticket.id, SlaClock.target.in_(TARGETS),
                   or_(SlaClock.breached_at.is_not(None), SlaClock.outcome == "met"))
    return (select(Ticket.id, Ticket.tenant_id, Ticket.team_id, Ticket.category_id, Ticket.created_at,
                   Ticket.status, Ticket.resolved_at, SlaClock.id.label("clock_id"),
                   SlaClock.tenant_id.label("clock_tenant_id"), SlaClock.target, SlaClock.priority,
                   SlaClock.decided_at, SlaClock.breached_at)
            .outerjoin(SlaClock, counted)
            .where(Ticket.id.in_(bindparam("ticket_ids", sorted(ticket_ids), expanding=True))))


def _add(totals: dict, rows) -> None:
    """Add the contributions of (ticket LEFT JOIN counted clock) rows to totals[key] = [4 measures]."""
    seen: set[int] = set()
    for row in rows:
        category = row.category_id or 0
        if row.id not in seen:
            seen.add(row.id)
            opened = month_of(row.created_at)
            figures = totals[(row.tenant_id, opened, row.team_id, category, 0, "")]
            figures[0] += 1
            figures[4] += 1
            if row.status in DONE_STATUSES:
                # Out of the backlog from the month it was resolved (as the report's backlog condition).
                resolved = month_of(row.resolved_at) if row.resolved_at is not None else opened
                if row.resolved_at is not None:
                    totals[(row.tenant_id, resolved, row.team_id, category, 0, "")][1] += 1
                totals[(row.tenant_id, max(opened, resolved), row.team_id, category, 0, "")][4] -= 1
        if row.clock_id is not None:
            final = row.decided_at or row.breached_at
            key = (row.clock_tenant_id, month_of(final), row.team_id, category, row.priority, row.target)
            totals[key][3 if row.breached_at is not None else 2] += 1


def contributions(connection, ticket_ids) -> dict[Key, list[int]]:
    """Return what these tickets (and their clocks) count in the rollups now, as read by `connection`."""
    totals: dict[Key, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    ids = sorted(ticket_ids)
    for start in range(0, len(ids), _CHUNK):  # bound the bind parameters of a very large flush
        _add(totals, connection.execute(_facts_query(ids[start:start + _CHUNK])))
    return totals


def _upsert(connection, deltas: dict[Key, list[int]]) -> None:
    """Add per-key deltas to the rollups in one statement (rows in key order)."""
    records = [dict(zip(_KEY, key), **dict(zip(MEASURES, values)))
               for key, values in sorted(deltas.items()) if any(values)]
    if not records:
        return
    insert = pg_insert if connection.dialect.name == "postgresql" else sqlite_insert
    for start in range(0, len(records), _CHUNK // 10):
        statement = insert(_table).values(records[start:start + _CHUNK // 10])
        statement = statement.on_conflict_do_update(
            index_elements=list(_KEY),
            set_={name: _table.c[name] + statement.excluded[name] for name in MEASURES})
        connection.execute(statement)


def _changed(obj, names) -> bool:
    return any(get_history(obj, name).has_changes() for name in names)


@event.listens_for(Session, "before_flush")
def _before_flush(session: Session, flush_context, instances) -> None:
    """Note the tickets whose figures this flush may move and read what they count before it."""
    session.info.pop(_PENDING, None)
    touched: set[int] = set()
    new_tickets: list[Ticket] = []
    for obj in session.new:
        if isinstance(obj, Ticket):
            new_tickets.append(obj)
        elif isinstance(obj, SlaClock) and obj.ticket_id is not None:
            touched.add(obj.ticket_id)
    for obj in session.dirty:
        if isinstance(obj, Ticket) and _changed(obj, _TICKET_COLUMNS):
            touched.add(obj.id)
        elif isinstance(obj, SlaClock) and _changed(obj, _CLOCK_COLUMNS):
            touched.add(obj.ticket_id)
            old_ticket = get_history(obj, "ticket_id").deleted  # a clock moved to another ticket (never today)
            touched.update(t for t in old_ticket or () if t is not None)
    for obj in session.deleted:
        if isinstance(obj, Ticket):
            touched.add(obj.id)
        elif isinstance(obj, SlaClock):
            touched.add(obj.ticket_id)
    touched.discard(None)
    new_clock_tickets = [obj for obj in session.new if isinstance(obj, SlaClock) and obj.ticket_id is None]
    if not (touched or new_tickets or new_clock_tickets):
        return
    before = contributions(session.connection(), touched)
    session.info[_PENDING] = (touched, new_tickets, new_clock_tickets, before)


@event.listens_for(Session, "after_flush")
def _after_flush(session: Session, flush_context) -> None:
    """Add (now - before) of the noted tickets to the rollups, in the flush's transaction."""
    pending = session.info.pop(_PENDING, None)
    if pending is None:
        return
    touched, new_tickets, new_clock_tickets, before = pending
    # New tickets (and clocks of tickets that got their id in this flush) counted nothing before.
    now_ids = set(touched) | {t.id for t in new_tickets} | {c.ticket_id for c in new_clock_tickets}
    now_ids.discard(None)
    connection = session.connection()
    after = contributions(connection, now_ids)
    deltas: dict[Key, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    for key, values in after.items():
        deltas[key] = list(values)
    for key, values in before.items():
        deltas[key] = [a - b for a, b in zip(deltas[key], values)]
    _upsert(connection, deltas)


# --- rebuilding from the raw rows --------------------------------------------------------------

_PG_REBUILD = """
INSERT INTO report_month_rollup (tenant_id, month, team_id, category_id, priority, target,
                                 opened, resolved, met, breached, backlog_change)
SELECT tenant_id, month, team_id, category_id, priority, target,
       sum(opened), sum(resolved), sum(met), sum(breached), sum(backlog_change)
FROM (
  SELECT t.tenant_id, date_trunc('month', t.created_at AT TIME ZONE 'Europe/Berlin')::date AS month,
         t.team_id, coalesce(t.category_id, 0) AS category_id, 0 AS priority, '' AS target,
         count(*) AS opened, 0 AS resolved, 0 AS met, 0 AS breached, count(*) AS backlog_change
  FROM ticket t WHERE {ticket_where}
  GROUP BY 1, 2, 3, 4
  UNION ALL
  SELECT t.tenant_id, date_trunc('month', t.resolved_at AT TIME ZONE 'Europe/Berlin')::date,
         t.team_id, coalesce(t.category_id, 0), 0, '', 0, count(*), 0, 0, 0
  FROM ticket t
  WHERE {ticket_where} AND t.status IN ('resolved', 'closed') AND t.resolved_at IS NOT NULL
  GROUP BY 1, 2, 3, 4
  UNION ALL
  SELECT t.tenant_id,
         date_trunc('month', greatest(t.created_at, coalesce(t.resolved_at, t.created_at))
                    AT TIME ZONE 'Europe/Berlin')::date,
         t.team_id, coalesce(t.category_id, 0), 0, '', 0, 0, 0, 0, -count(*)
  FROM ticket t
  WHERE {ticket_where} AND t.status IN ('resolved', 'closed')
  GROUP BY 1, 2, 3, 4
  UNION ALL
  SELECT c.tenant_id,
         date_trunc('month', coalesce(c.decided_at, c.breached_at) AT TIME ZONE 'Europe/Berlin')::date,
         t.team_id, coalesce(t.category_id, 0), c.priority, c.target,
         0, 0, count(*) FILTER (WHERE c.breached_at IS NULL), count(c.breached_at), 0
  FROM sla_clock c JOIN ticket t ON t.id = c.ticket_id
  WHERE {ticket_where} AND c.target IN ('first_response', 'next_update', 'resolution')
    AND (c.breached_at IS NOT NULL OR c.outcome = 'met')
  GROUP BY 1, 2, 3, 4, 5, 6
) parts
GROUP BY tenant_id, month, team_id, category_id, priority, target
"""


def rebuild(connection, tenant_id: int | None = None, batch: int = _CHUNK) -> None:
    """Recompute the rollups (of one tenant, or all) from the raw ticket and clock rows.

    PostgreSQL: one set-based INSERT … SELECT (the migration's backfill; seconds at 1M tickets).
    SQLite (the small embedded default): the same contributions as the live path, in id batches.
    """
    removal = delete(_table)
    if tenant_id is not None:
        removal = removal.where(_table.c.tenant_id == tenant_id)
    connection.execute(removal)
    if connection.dialect.name == "postgresql":
        where = "t.tenant_id = :tenant_id" if tenant_id is not None else "true"
        connection.execute(text(_PG_REBUILD.format(ticket_where=where)),
                           {"tenant_id": tenant_id} if tenant_id is not None else {})
        return
    totals: dict[Key, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    ids = select(Ticket.id).order_by(Ticket.id)
    if tenant_id is not None:
        ids = ids.where(Ticket.tenant_id == tenant_id)
    every_id = list(connection.execute(ids).scalars())
    for start in range(0, len(every_id), batch):
        _add(totals, connection.execute(_facts_query(every_id[start:start + batch])))
    records = [dict(zip(_KEY, key), **dict(zip(MEASURES, values)))
               for key, values in sorted(totals.items()) if any(values)]
    for start in range(0, len(records), 500):
        connection.execute(_table.insert(), records[start:start + 500])


def stored(connection, tenant_id: int | None = None) -> dict[Key, tuple[int, ...]]:
    """Return the non-zero rollup rows as {key: (opened, resolved, met, breached, backlog_change)}."""
    query = select(*(_table.c[name] for name in _KEY), *(_table.c[name] for name in MEASURES))
    if tenant_id is not None:
        query = query.where(_table.c.tenant_id == tenant_id)
    found = {}
    for row in connection.execute(query):
        values = tuple(row[len(_KEY):])
        if any(values):
            found[tuple(row[:len(_KEY)])] = values
    return found

"""Full-text search over tickets: the search documents, kept in step on every flush, and ranked queries.

PostgreSQL: German-stemmed, weighted tsvectors with GIN indexes (`ticket_search`), `ts_rank` and
`ts_headline`; ticket numbers and parts of them through a pg_trgm index on `ticket.number`.
SQLite (the embedded default): the FTS5 table `ticket_search_fts` over the same texts, `bm25` and
`snippet`; the query words are stemmed with the same Snowball German stemmer and matched as prefixes.
Requesters and contact managers search only the public document (no internal notes) and only the
tickets their lists show (helpdesk.services.permissions.ticket_visibility).
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import snowballstemmer
from markupsafe import Markup, escape
from sqlalchemy import (
    ColumnElement, Text, and_, bindparam, cast, column, event, func, literal, literal_column, or_, select, table, text,
)
from sqlalchemy.dialects.postgresql import TSQUERY, TSVECTOR
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.orm.attributes import get_history

from helpdesk.extensions import db
from helpdesk.models import Category, Comment, Tenant, Ticket, TicketSearch, User
from helpdesk.services.permissions import can_see_internal, ticket_visibility

# Markers around a matched word in a snippet; private-use characters, so escaping never touches them.
_START, _STOP = "\ue000", "\ue001"
_MAX_WORDS = 8
_MAX_CHARS = 100_000  # of a description or the comments in a document: a pasted log must not fail the save
_NUMBER_RE = re.compile(r"^(?=.*\d)[A-Za-z0-9-]{3,30}$")
_HEADLINE_OPTIONS = (f"StartSel={_START}, StopSel={_STOP}, MaxWords=30, MinWords=12, "
                     "MaxFragments=2, FragmentDelimiter=\" … \"")
_stemmer = snowballstemmer.stemmer("german")


@dataclass(frozen=True)
class SearchHit:
    """One ticket found, with the matching passage (escaped, matches in <mark>)."""

    ticket: Ticket
    snippet: Markup


# ---------------------------------------------------------------------------------------------- documents

_PG_REFRESH = """
INSERT INTO ticket_search (ticket_id, title, public_text, internal_text, public_document, internal_document)
SELECT d.ticket_id, d.title, d.public_text, d.internal_text, d.public_document,
       CASE WHEN d.internal_text <> '' THEN setweight(to_tsvector('german', d.internal_text), 'C') END
FROM (
  SELECT t.id AS ticket_id,
         t.number || ' ' || t.subject AS title,
         concat_ws(E'\\n', left(t.description, {max}), c.public_comments,
                   u.name || ' <' || u.email || '>', n.name) AS public_text,
         coalesce(c.internal_comments, '') AS internal_text,
         setweight(to_tsvector('german', t.number || ' ' || replace(t.number, '-', ' ') || ' ' || t.subject), 'A')
         || setweight(to_tsvector('german', left(t.description, {max})), 'B')
         || setweight(to_tsvector('german', coalesce(c.public_comments, '')), 'C')
         || setweight(to_tsvector('german', u.name || ' ' || u.email || ' ' || translate(u.email, '@.', '  ')
                                  || ' ' || n.name), 'D') AS public_document
  FROM ticket t
  JOIN "user" u ON u.id = t.requester_id
  JOIN tenant n ON n.id = t.tenant_id
  LEFT JOIN LATERAL (
    SELECT left(string_agg(body, E'\\n' ORDER BY created_at, id) FILTER (WHERE NOT is_internal), {max})
             AS public_comments,
           left(string_agg(body, E'\\n' ORDER BY created_at, id) FILTER (WHERE is_internal), {max})
             AS internal_comments
    FROM comment WHERE comment.ticket_id = t.id
  ) c ON true
  WHERE {where}
) d
ON CONFLICT (ticket_id) DO UPDATE SET
  title = excluded.title, public_text = excluded.public_text, internal_text = excluded.internal_text,
  public_document = excluded.public_document, internal_document = excluded.internal_document
"""

# The FTS5 table follows ticket_search through its triggers, so a delete and an insert keep both in step.
_SQLITE_DELETE = "DELETE FROM ticket_search WHERE ticket_id IN (SELECT t.id FROM ticket t WHERE {where})"
_SQLITE_INSERT = """
INSERT INTO ticket_search (ticket_id, title, public_text, internal_text)
SELECT t.id,
       t.number || ' ' || replace(t.number, '-', ' ') || ' ' || t.subject,
       substr(t.description, 1, {max}) || coalesce(char(10) || substr(c.public_comments, 1, {max}), '')
         || char(10) || u.name || ' <' || u.email || '>' || char(10) || n.name,
       coalesce(substr(c.internal_comments, 1, {max}), '')
FROM ticket t
JOIN "user" u ON u.id = t.requester_id
JOIN tenant n ON n.id = t.tenant_id
LEFT JOIN (
  SELECT ticket_id,
         group_concat(CASE WHEN NOT is_internal THEN body END, char(10)) AS public_comments,
         group_concat(CASE WHEN is_internal THEN body END, char(10)) AS internal_comments
  FROM comment WHERE ticket_id IN (SELECT t.id FROM ticket t WHERE {where})
  GROUP BY ticket_id
) c ON c.ticket_id = t.id
WHERE {where}
"""


def _refresh(connection, where: str, params: dict) -> None:
    """Rebuild the search documents of the tickets matching `where` (SQL over `ticket t`), set-based."""
    if connection.dialect.name == "postgresql":
        statements = [_PG_REFRESH]
    else:
        statements = [_SQLITE_DELETE, _SQLITE_INSERT]
    for sql in statements:
        statement = text(sql.format(where=where, max=_MAX_CHARS))
        for name, value in params.items():
            if isinstance(value, (list, tuple, set)):
                statement = statement.bindparams(bindparam(name, expanding=True))
        connection.execute(statement, {k: list(v) if isinstance(v, set) else v for k, v in params.items()})


def reindex_range(connection, low: int, high: int) -> None:
    """Rebuild the documents of the tickets with low <= id <= high (the migration backfills in such batches)."""
    _refresh(connection, "t.id BETWEEN :low AND :high", {"low": low, "high": high})


def reindex_all(connection, batch: int = 50_000) -> int:
    """Rebuild every ticket's document in id batches; return the number of batches."""
    top = connection.execute(text("SELECT max(id) FROM ticket")).scalar() or 0
    batches = 0
    for low in range(1, top + 1, batch):
        reindex_range(connection, low, low + batch - 1)
        batches += 1
    return batches


def _changed(obj, *names: str) -> bool:
    # get_history reads one attribute; inspect(obj).attrs would build state for every attribute of the row.
    return any(get_history(obj, name).has_changes() for name in names)


@event.listens_for(Session, "after_flush")
def _follow_changes(session: Session, flush_context) -> None:
    """Rebuild the documents of the tickets this flush changed, in the same transaction (one statement)."""
    ticket_ids: set[int] = set()
    user_ids: set[int] = set()
    tenant_ids: set[int] = set()
    for obj in session.new:
        if isinstance(obj, Ticket):
            ticket_ids.add(obj.id)
        elif isinstance(obj, Comment):
            ticket_ids.add(obj.ticket_id)
    for obj in session.dirty:
        if isinstance(obj, Ticket) and _changed(obj, "number", "subject", "description", "requester_id",
                                                "tenant_id"):
            ticket_ids.add(obj.id)
        elif isinstance(obj, Comment) and _changed(obj, "body", "is_internal", "ticket_id"):
            ticket_ids.add(obj.ticket_id)
        elif isinstance(obj, User) and _changed(obj, "name", "email"):
            user_ids.add(obj.id)
        elif isinstance(obj, Tenant) and _changed(obj, "name"):
            tenant_ids.add(obj.id)
    for obj in session.deleted:
        if isinstance(obj, Comment):
            ticket_ids.add(obj.ticket_id)
    ticket_ids.discard(None)
    if not (ticket_ids or user_ids or tenant_ids):
        return
    clauses, params = [], {}
    for column, name, ids in (("t.id", "ticket_ids", ticket_ids), ("t.requester_id", "user_ids", user_ids),
                              ("t.tenant_id", "tenant_ids", tenant_ids)):
        if ids:
            clauses.append(f"{column} IN :{name}")
            params[name] = sorted(ids)
    _refresh(session.connection(), " OR ".join(clauses), params)


# ---------------------------------------------------------------------------------------------- queries

def words(query: str | None) -> list[str]:
    """Return the searchable words of a query (letters and digits, at most eight, lower case)."""
    found = [w.lower() for w in re.findall(r"\w+", str(query or "")) if len(w) >= 2 or w.isdigit()]
    return [w[:50] for w in found[:_MAX_WORDS]]


def _number_pattern(query: str) -> str | None:
    """Return a LIKE pattern when the query looks like (a part of) a ticket number, else None."""
    cleaned = str(query or "").strip()
    if not _NUMBER_RE.match(cleaned):
        return None
    return f"%{cleaned}%"  # letters, digits and "-" only: nothing to escape for LIKE


def _pg_tsquery(terms: list[str]) -> str:
    # The words hold only letters, digits and "_", so quoting them is safe; the 'german' config stems
    # each one and ':*' matches it as a prefix (Drucker → druck:* finds "Druckerei" and "druckt" too).
    return " & ".join(f"'{w}':*" if len(w) >= 3 else f"'{w}'" for w in terms)


def _fold(word: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", word) if not unicodedata.combining(c))


def _fts5_query(terms: list[str], public_only: bool) -> str:
    # The same idea without a German tokenizer in SQLite: stem the word, then match the stem as a prefix.
    parts = []
    for w in terms:
        stem = _fold(_stemmer.stemWord(w)) if not w.isdigit() else w
        parts.append(f'"{stem}"*' if len(stem) >= 3 else f'"{stem}"')
    expression = " AND ".join(parts)
    return f"{{title public_text}} : ({expression})" if public_only else expression


def highlight(raw: str | None) -> Markup:
    """Return the snippet text escaped, with the marked matches wrapped in <mark> (balanced, never raw)."""
    out, marked = [], False
    for part in re.split(f"([{_START}{_STOP}])", raw or ""):
        if part == _START:
            marked = True
        elif part == _STOP:
            marked = False
        elif part:
            out.append(f"<mark>{escape(part)}</mark>" if marked else str(escape(part)))
    return Markup("".join(out))


def _load(ids: list[int]) -> dict[int, Ticket]:
    tickets = db.session.scalars(select(Ticket).where(Ticket.id.in_(ids)).options(
        selectinload(Ticket.tenant), selectinload(Ticket.requester),
        selectinload(Ticket.category).selectinload(Category.parent),
        selectinload(Ticket.team), selectinload(Ticket.assignee),
    ))
    return {ticket.id: ticket for ticket in tickets}


def _number_hits(user: User, pattern: str, limit: int) -> list[tuple[int, str]]:
    rows = db.session.execute(
        select(Ticket.id, Ticket.number, Ticket.subject)
        .where(ticket_visibility(user), Ticket.number.ilike(pattern, escape="\\"))
        .order_by(Ticket.id.desc()).limit(limit)
    )
    return [(row.id, f"{_START}{row.number}{_STOP} {row.subject}") for row in rows]


_fts = table("ticket_search_fts", column("rowid"), column("ticket_search_fts"))
_GERMAN = literal_column("'german'::regconfig")


def _word_queries(terms: list[str]) -> tuple[list[str], int]:
    """Return the tsquery of each word that is not a stop word, and the highest ticket id (one statement)."""
    row = db.session.execute(
        select(select(func.max(TicketSearch.ticket_id)).scalar_subquery(),
               *(func.to_tsquery(_GERMAN, _pg_tsquery([w])).cast(Text) for w in terms))
    ).one()
    return [query for query in row[1:] if query], row[0] or 0


def _pg_match(user: User, word_queries: list[str]):
    """Return the WHERE clause: every word in the public document, or for staff in the public or internal one."""
    clauses = []
    for word in word_queries:
        query = literal(word).cast(TSQUERY)
        if can_see_internal(user):
            # Each word may stand in the public text or in a note: OR per word keeps both GIN indexes usable.
            clauses.append(or_(TicketSearch.public_document.op("@@")(query),
                               TicketSearch.internal_document.op("@@")(query)))
        else:
            clauses.append(TicketSearch.public_document.op("@@")(query))
    return and_(*clauses)


# Staff search all tickets: ranking every match of a common word among a million tickets is too slow for a
# page, so the newest tickets are ranked first and older ones only while the page is not full.
_RECENT_TIERS = (5_000, 50_000, 500_000)


def _text_hits_postgresql(user: User, terms: list[str], limit: int) -> list[tuple[int, str]]:
    staff = can_see_internal(user)
    word_queries, top = _word_queries(terms)
    if not word_queries:
        return []
    query = literal(" & ".join(f"({q})" for q in word_queries)).cast(TSQUERY)
    document = TicketSearch.public_document
    if staff:
        document = func.coalesce(TicketSearch.public_document, cast("", TSVECTOR)).op("||")(
            func.coalesce(TicketSearch.internal_document, cast("", TSVECTOR)))
    bounds = [top - size for size in _RECENT_TIERS if top > size] if staff else []
    bounds.append(0)
    hits: list[tuple[int, str]] = []
    newer_than = None
    for bound in bounds:
        ranked = (
            select(TicketSearch.ticket_id.label("ticket_id"), func.ts_rank(document, query).label("rank"))
            .join(Ticket, Ticket.id == TicketSearch.ticket_id)
            .where(_pg_match(user, word_queries), ticket_visibility(user), TicketSearch.ticket_id > bound)
        )
        if newer_than is not None:
            ranked = ranked.where(TicketSearch.ticket_id <= newer_than)
        ranked = (ranked.order_by(literal_column("rank").desc(), TicketSearch.ticket_id.desc())
                  .limit(limit - len(hits)).subquery("ranked"))
        # ts_headline reads the whole text: compute it only for the page of results, outside the ranking.
        body = TicketSearch.title + "\n" + TicketSearch.public_text
        if staff:
            body = body + "\n" + TicketSearch.internal_text
        rows = db.session.execute(
            select(ranked.c.ticket_id, func.ts_headline(_GERMAN, body, query, _HEADLINE_OPTIONS).label("snippet"))
            .join(TicketSearch, TicketSearch.ticket_id == ranked.c.ticket_id)
            .order_by(ranked.c.rank.desc(), ranked.c.ticket_id.desc())
        )
        hits.extend((row.ticket_id, row.snippet) for row in rows)
        if len(hits) >= limit:
            break
        newer_than = bound
    return hits


def _text_hits_sqlite(user: User, terms: list[str], limit: int) -> list[tuple[int, str]]:
    staff = can_see_internal(user)
    rows = db.session.execute(
        select(_fts.c.rowid.label("ticket_id"),
               # A requester's snippet comes from the public text only, never from the internal column.
               func.snippet(_fts.c.ticket_search_fts, -1 if staff else 1, _START, _STOP, " … ", 24)
               .label("snippet"))
        .select_from(_fts.join(Ticket, Ticket.id == _fts.c.rowid))
        .where(_fts.c.ticket_search_fts.op("MATCH")(_fts5_query(terms, public_only=not staff)),
               ticket_visibility(user))
        # bm25: smaller is better; a word in the number or subject counts more than one in the text.
        .order_by(func.bm25(_fts.c.ticket_search_fts, 10.0, 2.0, 1.0), _fts.c.rowid.desc())
        .limit(limit)
    )
    return [(row.ticket_id, row.snippet) for row in rows]


def search(user: User, query: str | None, limit: int = 20) -> list[SearchHit]:
    """Return the tickets the user may see that match all words of the query, best first, with snippets.

    A query shaped like (part of) a ticket number finds the tickets whose number contains it; only when
    there are none is it searched as words.
    """
    terms = words(query)
    found: list[tuple[int, str]] = []
    pattern = _number_pattern(query)
    if pattern:
        found.extend(_number_hits(user, pattern, limit))
    # A query shaped like a ticket number that matched numbers means those tickets: no word search on top.
    if terms and not found:
        if db.engine.dialect.name == "postgresql":
            found.extend(_text_hits_postgresql(user, terms, limit))
        else:
            found.extend(_text_hits_sqlite(user, terms, limit))
    seen: dict[int, str] = {}
    for ticket_id, snippet in found:
        seen.setdefault(ticket_id, snippet)
    ids = list(seen)[:limit]
    if not ids:
        return []
    tickets = _load(ids)
    return [SearchHit(tickets[i], highlight(seen[i])) for i in ids if i in tickets]


def text_condition(user: User, query: str | None) -> ColumnElement[bool]:
    """Return a WHERE clause on Ticket: the ticket matches the query for this user (the list's text filter).

    Words: a correlated EXISTS on the search document, so the list keeps its own scope, order, keyset
    and LIMIT, and the planner either walks the list's index in order and checks each ticket's document
    (common words: stops after one page) or reads the few matches from GIN first (rare words).
    Scope rules as matching_ticket_ids. (PostgreSQL plans the former `id IN (SELECT …)` of words as the
    same semi-join; what still grows with the archive is the capped count, which must find every match
    up to the cap: the GIN posting lists of the words.)
    """
    terms = words(query)
    pattern = _number_pattern(query)
    if pattern:
        # Shaped like (part of) a number: an OR with the EXISTS would check the number of every ticket of
        # the list one by one (no trigram index under an OR); the few matching ids are one hashed set instead.
        return Ticket.id.in_(matching_ticket_ids(user, query))
    if not terms:
        return Ticket.id.is_(None)
    if db.engine.dialect.name == "postgresql":
        word_queries, _top = _word_queries(terms)
        if not word_queries:
            return Ticket.id.is_(None)
        return (select(TicketSearch.ticket_id)
                .where(TicketSearch.ticket_id == Ticket.id, _pg_match(user, word_queries))
                .correlate(Ticket).exists())
    # FTS5 answers MATCH for the whole table at once; the (small, embedded) SQLite database takes the set.
    return Ticket.id.in_(select(_fts.c.rowid).where(
        _fts.c.ticket_search_fts.op("MATCH")(_fts5_query(terms, public_only=not can_see_internal(user)))))


def matching_ticket_ids(user: User, query: str | None):
    """Return a select of the ids of tickets the user may see that match the query (the queue's text filter)."""
    terms = words(query)
    pattern = _number_pattern(query)
    staff = can_see_internal(user)
    by_number = select(Ticket.id).where(Ticket.number.ilike(pattern, escape="\\")) if pattern else None
    if not terms:
        return by_number if by_number is not None else select(Ticket.id).where(Ticket.id.is_(None))
    if db.engine.dialect.name == "postgresql":
        word_queries, _top = _word_queries(terms)
        if not word_queries:
            return by_number if by_number is not None else select(Ticket.id).where(Ticket.id.is_(None))
        by_text = select(TicketSearch.ticket_id).where(_pg_match(user, word_queries))
    else:
        by_text = select(_fts.c.rowid).where(
            _fts.c.ticket_search_fts.op("MATCH")(_fts5_query(terms, public_only=not staff)))
    return by_text.union(by_number) if by_number is not None else by_text

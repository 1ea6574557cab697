"""Human labels for the domain's codes, translated lazily (German is the source language)."""
from flask_babel import gettext, ngettext
from flask_babel import lazy_gettext as _l

STATUS_LABELS = {
    "new": _l("Neu"),
    "open": _l("In Bearbeitung"),
    "pending": _l("Wartet auf Rückmeldung"),
    "resolved": _l("Gelöst"),
    "closed": _l("Geschlossen"),
}
PRIORITY_LABELS = {1: _l("P1 kritisch"), 2: _l("P2 hoch"), 3: _l("P3 mittel"), 4: _l("P4 niedrig")}
LEVEL_LABELS = {1: _l("hoch"), 2: _l("mittel"), 3: _l("niedrig")}
IMPACT_HELP = {
    1: _l("hoch – viele Arbeitsplätze oder ein Fachverfahren stehen still"),
    2: _l("mittel – eine Abteilung oder mehrere Personen sind betroffen"),
    3: _l("niedrig – eine Person ist betroffen"),
}
URGENCY_HELP = {
    1: _l("hoch – die Arbeit ist blockiert, es gibt keine Umgehung"),
    2: _l("mittel – die Arbeit ist erschwert"),
    3: _l("niedrig – kann warten"),
}
CHANNEL_LABELS = {"web": _l("Portal"), "phone": _l("Telefon"), "email": _l("E-Mail"), "api": _l("API")}
ROLE_LABELS = {
    "requester": _l("Mitarbeiter/in einer Behörde"),
    "tenant_manager": _l("Ansprechpartner/in der Behörde"),
    "agent": _l("KSM-Support"),
    "team_lead": _l("KSM-Teamleitung"),
    "service_manager": _l("KSM-Servicemanagement"),
    "admin": _l("Administration"),
}
FIELD_LABELS = {
    "status": _l("Status"),
    "priority": _l("Priorität"),
    "team": _l("Team"),
    "assignee": _l("Bearbeiter/in"),
    "category": _l("Kategorie"),
    "impact": _l("Auswirkung"),
    "urgency": _l("Dringlichkeit"),
}
TARGET_LABELS = {
    "first_response": _l("Erstreaktion"),
    "next_update": _l("Folgeantwort"),
    "resolution": _l("Lösung"),
}
SLA_STATE_LABELS = {
    "ok": _l("im Plan"),
    "warning": _l("knapp"),
    "breached": _l("verletzt"),
    "paused": _l("pausiert"),
    "met": _l("eingehalten"),
}

# The system-written lines of a ticket's history (TicketEvent.note_code): each code with a function of
# its stored values (TicketEvent.note_params) that gives the text in the current language.
# A new kind of system line adds its code here.
HISTORY_NOTES = {
    "created_by": lambda name: gettext("Erfasst von %(name)s", name=name),
    "priority_from_matrix": lambda: gettext("aus Auswirkung × Dringlichkeit"),
    "routing_rule": lambda rule: gettext("Regel: %(rule)s", rule=rule),
    "default_team": lambda: gettext("Standardteam"),
    "requester_answered": lambda: gettext("Antwort der anfragenden Person"),
    "reopened_by_reply": lambda: gettext("Wiedereröffnet durch Antwort"),
    "reopened": lambda: gettext("Wiedereröffnet"),
    "resolution_confirmed": lambda: gettext("Lösung bestätigt"),
    "changed_by_hand": lambda: gettext("manuell geändert"),
    "by_email": lambda: gettext("per E-Mail"),
    "auto_reply_received": lambda: gettext("automatische Antwort, nicht als Nachricht übernommen"),
    "confirmation_suppressed": lambda limit: gettext(
        "keine Eingangsbestätigung: %(limit)s automatische Antworten in der letzten Stunde", limit=limit),
    "bounced": lambda reason: gettext("Unzustellbar gemeldet: %(reason)s", reason=reason),
    "auto_closed": lambda days: ngettext("Automatisch geschlossen nach %(num)d Tag",
                                         "Automatisch geschlossen nach %(num)d Tagen", int(days)),
}


def history_note(event) -> str | None:
    """Return a history line's note in the current language: the code's text, then what a person typed."""
    text = None
    render = HISTORY_NOTES.get(event.note_code) if event.note_code else None
    if render is not None:
        try:
            text = render(**(event.note_params or {}))
        except (TypeError, ValueError):
            text = None  # values of another shape (a later version wrote them): show the stored text
    parts = [part for part in (text, event.note) if part]
    return " – ".join(parts) or None

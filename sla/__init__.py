"""Compute SLA business time, target clocks and escalations; pure, no framework, `now` passed in."""
from sla.calendar import BusinessCalendar
from sla.clock import TARGETS, TargetClock
from sla.escalation import DEFAULT_LEVELS, EscalationLevel, Evaluation, evaluate_levels, next_level_check, supersede
from sla.replay import ClockOutcome, HistoryEvent, replay, replay_records

__all__ = [
    "DEFAULT_LEVELS",
    "TARGETS",
    "BusinessCalendar",
    "ClockOutcome",
    "EscalationLevel",
    "Evaluation",
    "HistoryEvent",
    "TargetClock",
    "evaluate_levels",
    "next_level_check",
    "replay",
    "replay_records",
    "supersede",
]

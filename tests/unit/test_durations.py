"""SLA targets typed and shown as hours and minutes: the parser and the formatter."""
import pytest

from helpdesk.durations import DurationError, format_minutes, parse_minutes


@pytest.mark.parametrize("text, minutes", [
    ("4 h", 240), ("4h", 240), ("4 Std.", 240), ("4 Stunden", 240), ("1 Stunde", 60), ("4 hours", 240),
    ("4:30", 270), ("0:45", 45), ("90 min", 90), ("90 Min.", 90), ("90 Minuten", 90), ("30 minutes", 30),
    ("1,5 h", 90), ("1.5 h", 90), ("1 h 30 min", 90), ("1h30", 90), ("1 h 30", 90),
    ("1 Tag 2 h", 600), ("1 Tag, 2 h", 600), ("1 Tag und 2 h", 600), ("2 d", 960), ("2 Tage", 960),
    ("1 day 2 hours", 600), ("  4 H  ", 240), ("90", 90), (90, 90), ("10 h 0 min", 600),
])
def test_german_and_english_durations_become_business_minutes(text, minutes):
    assert parse_minutes(text) == minutes


@pytest.mark.parametrize("text", ["", "   ", None])
def test_an_empty_field_is_no_target(text):
    assert parse_minutes(text) is None


@pytest.mark.parametrize("text, message", [
    ("vier Stunden", "ist keine Dauer"),
    ("4 Wochen", "„Wochen“ ist keine Zeiteinheit"),
    ("2 h 3 h", "ist keine Dauer"),
    ("1 30 min", "ist keine Dauer"),
    ("-4 h", "ist keine Dauer"),
    ("0,01 h", "ganze Minuten"),
    ("4:75", "ist keine Dauer"),
    ("4 h; 3 min", "ist keine Dauer"),
])
def test_anything_else_is_refused_with_a_german_reason(text, message):
    with pytest.raises(DurationError) as refused:
        parse_minutes(text)
    assert message in str(refused.value)


@pytest.mark.parametrize("minutes, text", [
    (240, "4 h"), (270, "4 h 30 min"), (30, "30 min"), (0, "0 min"), (4800, "80 h"), (600, "10 h"),
    (None, ""),
])
def test_minutes_are_shown_in_hours_and_minutes_never_days(minutes, text):
    assert format_minutes(minutes) == text


@pytest.mark.parametrize("minutes", [1, 30, 59, 60, 61, 240, 480, 481, 4800, 500_000])
def test_what_is_shown_reads_back_as_the_same_minutes(minutes):
    assert parse_minutes(format_minutes(minutes)) == minutes

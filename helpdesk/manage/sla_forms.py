"""Forms for business calendars and SLA contracts.

They carry the raw text only: helpdesk.services.sla_admin parses the hours and closure days, checks
minutes and escalation levels and names the field it refuses. Targets are typed and shown as hours
and minutes ("4 h", "1 h 30 min"; helpdesk.durations); read_targets turns them into minutes.
"""
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice as C
from wtforms.validators import Length

from helpdesk.durations import DurationError, format_minutes, parse_minutes
from helpdesk.labels import TARGET_LABELS
from helpdesk.models.sla import TARGETS
from helpdesk.models.tickets import PRIORITIES
from helpdesk.services.sla_admin import RECIPIENT_ROLES

WEEKDAY_NAMES = (_l("Montag"), _l("Dienstag"), _l("Mittwoch"), _l("Donnerstag"), _l("Freitag"), _l("Samstag"),
                 _l("Sonntag"))
OTHER_REGION = "other"
HOLIDAY_REGIONS = (
    ("DE-MV", _l("Mecklenburg-Vorpommern")),
    ("DE-BB", _l("Brandenburg")),
    ("DE-SH", _l("Schleswig-Holstein")),
    ("DE-NI", _l("Niedersachsen")),
    ("DE-BE", _l("Berlin")),
    ("DE-HH", _l("Hamburg")),
    ("DE-HB", _l("Bremen")),
    ("DE-ST", _l("Sachsen-Anhalt")),
    ("DE-SN", _l("Sachsen")),
    ("DE-TH", _l("Thüringen")),
    ("DE-NW", _l("Nordrhein-Westfalen")),
    ("DE-HE", _l("Hessen")),
    ("DE-RP", _l("Rheinland-Pfalz")),
    ("DE-SL", _l("Saarland")),
    ("DE-BW", _l("Baden-Württemberg")),
    ("DE-BY", _l("Bayern")),
    ("DE", _l("Deutschland (nur bundesweite Feiertage)")),
)
REGION_LABELS = dict(HOLIDAY_REGIONS)
RECIPIENT_LABELS = {
    "assignee": _l("Bearbeiter/in bzw. Teamleitung"),
    "team_lead": _l("Teamleitung"),
    "service_manager": _l("KSM-Servicemanagement"),
    "tenant_contact": _l("Ansprechpartner/in der Behörde"),
}
LEVEL_ROWS = 3
_MAX_DURATION = Length(max=40, message=_l("Höchstens 40 Zeichen."))


def target_field_label(priority: int, target: str):
    """Label a target cell for screen readers: 'P1 Lösung'."""
    return _l("P%(p)s %(target)s", p=priority, target=TARGET_LABELS[target])


def read_targets(form) -> dict | None:
    """Return a form's targets in minutes, shaped like SlaPolicyVersion.targets (None for an empty cell).

    Every unreadable cell gets its message at the field and the result is None, so the admin sees
    all mistakes at once. `form` has target_field(priority, target), like ContractForm.
    """
    targets, refused = {}, False
    for priority in PRIORITIES:
        targets[str(priority)] = {}
        for target in TARGETS:
            field = form.target_field(priority, target)
            try:
                targets[str(priority)][target] = parse_minutes(field.data)
            except DurationError as exc:
                field.errors = [*field.errors, str(exc)]
                refused = True
    return None if refused else targets


def show_targets(form, targets: dict) -> None:
    """Fill a form's target cells with stored minutes, shown as hours and minutes."""
    for priority in PRIORITIES:
        for target in TARGETS:
            form.target_field(priority, target).data = format_minutes((targets.get(str(priority)) or {}).get(target))


class CalendarForm(FlaskForm):
    """A business calendar: weekly hours, a holiday region and extra closure days."""

    name = StringField(_l("Name"), validators=[Length(max=120, message=_l("Höchstens 120 Zeichen."))])
    timezone = StringField(_l("Zeitzone"), default="Europe/Berlin",
                           validators=[Length(max=60, message=_l("Höchstens 60 Zeichen."))])
    day0 = StringField(WEEKDAY_NAMES[0], validators=[Length(max=200, message=_l("Höchstens 200 Zeichen."))])
    day1 = StringField(WEEKDAY_NAMES[1], validators=[Length(max=200, message=_l("Höchstens 200 Zeichen."))])
    day2 = StringField(WEEKDAY_NAMES[2], validators=[Length(max=200, message=_l("Höchstens 200 Zeichen."))])
    day3 = StringField(WEEKDAY_NAMES[3], validators=[Length(max=200, message=_l("Höchstens 200 Zeichen."))])
    day4 = StringField(WEEKDAY_NAMES[4], validators=[Length(max=200, message=_l("Höchstens 200 Zeichen."))])
    day5 = StringField(WEEKDAY_NAMES[5], validators=[Length(max=200, message=_l("Höchstens 200 Zeichen."))])
    day6 = StringField(WEEKDAY_NAMES[6], validators=[Length(max=200, message=_l("Höchstens 200 Zeichen."))])
    holiday_region = SelectField(
        _l("Gesetzliche Feiertage"), validate_choice=False,
        choices=[C("", _l("– keine –"))] + [C(code, f"{label} ({code})") for code, label in HOLIDAY_REGIONS]
        + [C(OTHER_REGION, _l("anderer Code (unten eingeben)"))],
    )
    holiday_region_code = StringField(_l("Anderer Feiertagscode"),
                                      validators=[Length(max=10, message=_l("Höchstens 10 Zeichen."))])
    closures = TextAreaField(_l("Zusätzliche Schließtage"),
                             validators=[Length(max=20000, message=_l("Höchstens 20000 Zeichen."))])

    def day_fields(self) -> list:
        """Return the seven weekday fields, Monday first."""
        return [self[f"day{weekday}"] for weekday in range(7)]

    def region(self) -> str:
        """Return the holiday region code chosen in the select or typed in."""
        if self.holiday_region.data == OTHER_REGION:
            return (self.holiday_region_code.data or "").strip()
        return self.holiday_region.data or ""

    def set_region(self, code: str | None) -> None:
        """Show a stored region code: in the select when offered, else as the other code."""
        code = code or ""
        if code and code not in REGION_LABELS:
            self.holiday_region.data, self.holiday_region_code.data = OTHER_REGION, code
        else:
            self.holiday_region.data = code


class ContractForm(FlaskForm):
    """A tenant's SLA contract: calendar, goal, time per priority and target, escalation levels.

    The fields p<priority>_<target> and level<row>_<...> are added below the class.
    """

    name = StringField(_l("Name des Vertrags"), validators=[Length(max=200, message=_l("Höchstens 200 Zeichen."))])
    calendar = SelectField(_l("Geschäftszeiten-Kalender"), validate_choice=False, coerce=str)
    compliance_goal = StringField(_l("Erfüllungsziel in %"),
                                  validators=[Length(max=10, message=_l("Höchstens 10 Zeichen."))])

    def fill_choices(self, calendars) -> None:
        """Offer the calendars."""
        self.calendar.choices = [C("", _l("– bitte wählen –"))] + [C(str(c.id), c.name) for c in calendars]

    def target_field(self, priority: int, target: str):
        """Return the duration field of one priority and target."""
        return self[f"p{priority}_{target}"]

    def level_rows(self) -> list[dict]:
        """Return the escalation rows' fields: percent, one checkbox per recipient role, hours only."""
        return [
            {"percent": self[f"level{row}_percent"],
             "recipients": [self[f"level{row}_{role}"] for role in RECIPIENT_ROLES],
             "business_hours_only": self[f"level{row}_business_hours_only"]}
            for row in range(LEVEL_ROWS)
        ]

    def targets(self) -> dict | None:
        """Return the targets in minutes (None after marking unreadable entries at their fields)."""
        return read_targets(self)

    def levels(self) -> list[dict]:
        """Return the filled escalation rows (an empty percent drops the row)."""
        levels = []
        for row in range(LEVEL_ROWS):
            percent = (self[f"level{row}_percent"].data or "").strip().rstrip("%").strip()
            if not percent:
                continue
            levels.append({
                "percent": percent,
                "recipients": [role for role in RECIPIENT_ROLES if self[f"level{row}_{role}"].data],
                "business_hours_only": bool(self[f"level{row}_business_hours_only"].data),
            })
        return levels

    def load(self, targets: dict, levels: list[dict]) -> None:
        """Show stored terms in the fields (targets as hours and minutes)."""
        show_targets(self, targets)
        for row in range(LEVEL_ROWS):
            level = levels[row] if row < len(levels) else {}
            self[f"level{row}_percent"].data = str(level["percent"]) if level else ""
            for role in RECIPIENT_ROLES:
                self[f"level{row}_{role}"].data = role in level.get("recipients", [])
            self[f"level{row}_business_hours_only"].data = bool(level.get("business_hours_only"))


for _priority in PRIORITIES:
    for _target in TARGETS:
        setattr(ContractForm, f"p{_priority}_{_target}",
                StringField(target_field_label(_priority, _target), validators=[_MAX_DURATION]))
for _row in range(LEVEL_ROWS):
    setattr(ContractForm, f"level{_row}_percent",
            StringField(_l("Stufe %(n)d: Prozent des Ziels", n=_row + 1),
                        validators=[Length(max=5, message=_l("Höchstens 5 Zeichen."))]))
    for _role in RECIPIENT_ROLES:
        setattr(ContractForm, f"level{_row}_{_role}", BooleanField(RECIPIENT_LABELS[_role]))
    setattr(ContractForm, f"level{_row}_business_hours_only", BooleanField(_l("nur während der Servicezeiten")))

"""Personal API tokens in "Mein Konto": list, create (the secret is shown once), revoke."""
from __future__ import annotations

from datetime import datetime, time, timezone
from zoneinfo import ZoneInfo

from flask import current_app, flash, make_response, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import DateField, StringField
from wtforms.validators import DataRequired, Length, Optional

from helpdesk import clock
from helpdesk.auth import bp
from helpdesk.services import api_tokens
from helpdesk.services.errors import DomainError


class TokenForm(FlaskForm):
    """Name and optional expiry date of a new API token."""

    name = StringField(_l("Name"), validators=[DataRequired(_l("Bitte geben Sie einen Namen ein.")), Length(max=100)])
    expires_on = DateField(_l("Gültig bis (optional)"), validators=[Optional()])


class RevokeForm(FlaskForm):
    """Only the CSRF token: revoking needs no input."""


def _end_of_day_utc(day) -> datetime | None:
    """Return the end of a Berlin calendar day as an aware UTC moment (a token is valid through that day)."""
    if day is None:
        return None
    local = datetime.combine(day, time(23, 59, 59), tzinfo=ZoneInfo(current_app.config["DISPLAY_TIMEZONE"]))
    return local.astimezone(timezone.utc)


def _page(form: TokenForm, status: int = 200, secret: str | None = None, new_token=None):
    return render_template("auth/tokens.html", form=form, revoke_form=RevokeForm(),
                           tokens=api_tokens.user_tokens(current_user), secret=secret, new_token=new_token,
                           now=clock.utcnow()), status


@bp.route("/account/tokens", methods=["GET", "POST"])
@login_required
def tokens():
    """List the user's API tokens; create one and show its secret once."""
    form = TokenForm()
    if form.validate_on_submit():
        try:
            token, secret = api_tokens.create_token(current_user, name=form.name.data,
                                                    expires_at=_end_of_day_utc(form.expires_on.data), now=clock.utcnow())
        except DomainError as exc:
            field = form.expires_on if exc.field == "expires_at" else form.name
            field.errors = [*field.errors, exc.message]
            return _page(form, 422)
        # The secret is rendered into this answer only: never into a flash (the session cookie is not encrypted).
        body, status = _page(TokenForm(formdata=None), 200, secret=secret, new_token=token)
        response = make_response(body, status)
        response.headers["Cache-Control"] = "no-store"
        return response
    if form.is_submitted():
        return _page(form, 422)
    return _page(form)


@bp.route("/account/tokens/<int(max=2147483647):token_id>/revoke", methods=["POST"])
@login_required
def revoke_token(token_id: int):
    """Revoke one of the user's tokens."""
    form = RevokeForm()
    if form.validate_on_submit():
        token = api_tokens.revoke_token(current_user, token_id, clock.utcnow())
        flash(_("Der API-Zugang „%(name)s“ wurde widerrufen.", name=token.name), "success")
    return redirect(url_for("auth.tokens"))

"""Forms of the auth blueprint."""
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, EqualTo, Length


class LoginForm(FlaskForm):
    """Email and password."""

    email = StringField(_l("E-Mail-Adresse"), validators=[DataRequired(_l("Bitte geben Sie Ihre E-Mail-Adresse ein."))])
    password = PasswordField(_l("Passwort"), validators=[DataRequired(_l("Bitte geben Sie Ihr Passwort ein."))])
    remember = BooleanField(_l("Angemeldet bleiben"))


class PasswordForm(FlaskForm):
    """Change one's own password."""

    current_password = PasswordField(_l("Aktuelles Passwort"), validators=[DataRequired()])
    new_password = PasswordField(_l("Neues Passwort"), validators=[DataRequired(), Length(min=10, message=_l("Mindestens 10 Zeichen."))])
    confirm = PasswordField(
        _l("Neues Passwort wiederholen"),
        validators=[DataRequired(), EqualTo("new_password", message=_l("Die Passwörter stimmen nicht überein."))],
    )


class LanguageForm(FlaskForm):
    """Interface language."""

    locale = SelectField(_l("Sprache"), choices=[SelectChoice("de", "Deutsch"), SelectChoice("en", "English")])


class ForgotPasswordForm(FlaskForm):
    """The address a reset link is sent to."""

    email = StringField(_l("E-Mail-Adresse"), validators=[DataRequired(_l("Bitte geben Sie Ihre E-Mail-Adresse ein.")),
                                                          Length(max=254)])


class ResetPasswordForm(FlaskForm):
    """A new password chosen through a reset link."""

    new_password = PasswordField(_l("Neues Passwort"), validators=[DataRequired(), Length(min=10, message=_l("Mindestens 10 Zeichen."))])
    confirm = PasswordField(
        _l("Neues Passwort wiederholen"),
        validators=[DataRequired(), EqualTo("new_password", message=_l("Die Passwörter stimmen nicht überein."))],
    )

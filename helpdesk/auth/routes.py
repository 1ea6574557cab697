"""Routes of the auth blueprint."""
from urllib.parse import urlsplit

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user

from helpdesk.auth import bp
from helpdesk.auth.forms import ForgotPasswordForm, LanguageForm, LoginForm, PasswordForm, ResetPasswordForm
from helpdesk import clock
from helpdesk.extensions import limiter
from helpdesk.services import accounts
from helpdesk.services.errors import DomainError


def home_for(user) -> str:
    """Return the start page of a user's role; managers start on their dashboard."""
    if user.role in ("service_manager", "tenant_manager"):
        return url_for("reports.dashboard")
    if user.is_staff:
        return url_for("agent.queue")
    return url_for("portal.my_tickets")


def _login_key() -> str:
    # Throttle per address and per account, so one attacker cannot lock out a whole office.
    return f"{request.remote_addr}|{(request.form.get('email') or '').strip().lower()}"


def _login_address_key() -> str:
    # And per address across accounts: one password tried on every account of the directory.
    return f"login-address|{request.remote_addr}"


def _failed(response) -> bool:
    # Only failures count: a successful login redirects.
    return response.status_code != 302


def _safe_next(target: str | None) -> str | None:
    # Only a path on this site: browsers read "/\\host" and "/<tab>/host" as "//host", another site.
    if not target or not target.startswith("/") or target.startswith("//"):
        return None
    if "\\" in target or any(ord(char) < 32 or ord(char) == 127 for char in target):
        return None
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else None


def _same_site_referrer() -> str | None:
    # The page the form was sent from, as a path, only when it is a page of this site.
    referrer = request.referrer
    if not referrer:
        return None
    parts = urlsplit(referrer)
    if parts.scheme not in ("http", "https") or parts.netloc != request.host:
        return None
    return _safe_next(parts.path + (f"?{parts.query}" if parts.query else ""))


def renew_own_session(user) -> None:
    """Keep this browser logged in after the user's sessions were ended (new version in session and remember cookie)."""
    remembered = current_app.config.get("REMEMBER_COOKIE_NAME", "remember_token") in request.cookies
    login_user(user, remember=remembered or session.get("_remember") == "set")


@bp.route("/")
def index():
    """Send a visitor to the login page or their start page."""
    if current_user.is_authenticated:
        return redirect(home_for(current_user))
    return redirect(url_for("auth.login"))


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"], key_func=_login_key, methods=["POST"],
               deduct_when=_failed)
@limiter.limit(lambda: current_app.config["LOGIN_IP_RATE_LIMIT"], key_func=_login_address_key, methods=["POST"],
               deduct_when=_failed)
def login():
    """Show the login form; log in; failed attempts are throttled per account and per address."""
    if current_user.is_authenticated:
        return redirect(home_for(current_user))
    form = LoginForm()
    if form.validate_on_submit():
        user = accounts.authenticate(form.email.data, form.password.data, clock.utcnow())
        if user is not None:
            chosen = session.pop("locale_chosen", None)
            if chosen in current_app.config["LANGUAGES"] and chosen != user.locale:
                # The visitor picked a language on the login page just now: that choice beats the stored one.
                accounts.set_locale(user, chosen)
            login_user(user, remember=form.remember.data)
            session["locale"] = user.locale
            return redirect(_safe_next(request.args.get("next")) or home_for(user))
        flash(_("E-Mail-Adresse oder Passwort ist falsch."), "error")
        return render_template("auth/login.html", form=form), 200
    return render_template("auth/login.html", form=form)


@bp.route("/logout", methods=["POST"])
def logout():
    """Log out everywhere (copies of this browser's cookies stop working) and return to the login page."""
    if current_user.is_authenticated:
        # Session and remember cookies are signed, not stored: only a new session version makes copies useless.
        accounts.log_out(current_user._get_current_object())
    logout_user()
    flash(_("Sie wurden abgemeldet."), "info")
    return redirect(url_for("auth.login"))


@bp.route("/account", methods=["GET", "POST"])
@login_required
def account():
    """Show the user's profile with password and language forms; change the password."""
    password_form = PasswordForm(prefix="pw")
    language_form = LanguageForm(prefix="lang", locale=current_user.locale)
    if request.method == "POST":
        if password_form.validate():
            user = current_user._get_current_object()
            try:
                accounts.change_password(user, password_form.current_password.data, password_form.new_password.data)
            except DomainError as exc:
                field = password_form.new_password if exc.field == "password" else password_form.current_password
                field.errors.append(exc.message)
            else:
                renew_own_session(user)
                flash(_("Ihr Passwort wurde geändert."), "success")
                return redirect(url_for("auth.account"))
        return render_template("auth/account.html", password_form=password_form, language_form=language_form), 422
    return render_template("auth/account.html", password_form=password_form, language_form=language_form)


@bp.route("/account/language", methods=["POST"])
def language():
    """Switch the interface language (also before login)."""
    form = LanguageForm(prefix="lang")
    if form.validate_on_submit():
        session["locale"] = form.locale.data
        if current_user.is_authenticated:
            accounts.set_locale(current_user, form.locale.data)
        else:
            session["locale_chosen"] = form.locale.data  # stored on the account at the next login
    return redirect(_safe_next(request.form.get("next")) or _same_site_referrer() or url_for("auth.index"))


def _reset_request_key() -> str:
    # Per address asked for and per client, so nobody can flood one mailbox with reset links.
    return f"password-reset|{(request.form.get('email') or '').strip().lower()}"


@bp.route("/password/forgot", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["PASSWORD_RESET_RATE_LIMIT"], key_func=_reset_request_key, methods=["POST"])
@limiter.limit(lambda: current_app.config["LOGIN_IP_RATE_LIMIT"], key_func=_login_address_key, methods=["POST"])
def forgot_password():
    """Ask for a reset link; the answer is the same whether the address has an account or not."""
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        accounts.request_password_reset(
            form.email.data, clock.utcnow(),
            lambda token: current_app.config["BASE_URL"].rstrip("/") + url_for("auth.reset_password", token=token),
        )
        flash(_("Wenn zu dieser Adresse ein Konto besteht, erhalten Sie in wenigen Minuten eine E-Mail mit einem "
                "Link, über den Sie ein neues Passwort festlegen. Der Link gilt %(hours)s Stunden.",
                hours=f"{current_app.config['PASSWORD_RESET_HOURS']:g}"), "info")
        return redirect(url_for("auth.login"))
    status = 422 if request.method == "POST" else 200
    return render_template("auth/forgot_password.html", form=form), status


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
def reset_password(token: str):
    """Choose a new password through the link from the email; it works once and signs out everywhere."""
    user = accounts.user_for_reset_token(token)
    if user is None:
        flash(_("Dieser Link ist abgelaufen oder wurde schon benutzt. Bitte fordern Sie einen neuen an."), "error")
        return redirect(url_for("auth.forgot_password"))
    form = ResetPasswordForm()
    if form.validate_on_submit():
        try:
            accounts.reset_password(user, form.new_password.data)
        except DomainError as exc:
            form.new_password.errors.append(exc.message)
        else:
            if current_user.is_authenticated:
                logout_user()
            flash(_("Ihr neues Passwort gilt. Bitte melden Sie sich damit an."), "success")
            return redirect(url_for("auth.login"))
    status = 422 if request.method == "POST" else 200
    return render_template("auth/reset_password.html", form=form, user=user), status

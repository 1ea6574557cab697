"""Routes of the mailbox status page: how fetching from the IMAP mailbox goes, and "Jetzt abrufen".

Admins only (the manage blueprint's before_request).
"""
from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, url_for
from flask_babel import gettext as _

from helpdesk import clock
from helpdesk.manage import bp
from helpdesk.manage.forms import ConfirmForm
from helpdesk.services.mail import imap


@bp.route("/mailbox")
def mailbox():
    """Show the mailbox settings (never the password), the last fetch run, its errors and counts."""
    return render_template("manage/mailbox.html", info=imap.overview(current_app.config), form=ConfirmForm())


@bp.route("/mailbox/fetch", methods=["POST"])
def mailbox_fetch():
    """Fetch one batch from the mailbox now and say what it did."""
    form = ConfirmForm()
    if not form.validate_on_submit():
        abort(400)
    if not current_app.config.get("IMAP_HOST"):
        flash(_("Es ist kein Postfach eingerichtet (HELPDESK_IMAP_HOST)."), "error")
        return redirect(url_for("manage.mailbox"))
    result = imap.fetch_once(clock.utcnow())
    if result.error:
        flash(_("Abruf fehlgeschlagen: %(error)s", error=result.error), "error")
    else:
        flash(_("Abruf beendet: %(imported)s übernommen, %(held)s zur Prüfung, %(ignored)s ignoriert, "
                "%(failed)s fehlgeschlagen.", imported=result.imported, held=result.held,
                ignored=result.ignored, failed=result.failed), "success" if not result.failed else "error")
    return redirect(url_for("manage.mailbox"))

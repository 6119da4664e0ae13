"""In-app notifications, and e-mail when SMTP is configured."""

from __future__ import annotations

import logging
import smtplib
from email.message import EmailMessage

from flask import current_app
from mongoengine.errors import NotUniqueError

from models.notification import Notification
from models.user import User

log = logging.getLogger(__name__)


def notify(
    user_id: str, kind: str, text: str, link: str | None = None, dedupe_key: str | None = None
) -> Notification | None:
    """Notify a user; with `dedupe_key`, a second notification with the same key is skipped."""
    try:
        note = Notification(
            user_id=user_id, kind=kind, text=text, link=link, dedupe_key=dedupe_key
        ).save()
    except NotUniqueError:
        return None
    _mail(user_id, text, link)
    return note


def _mail(user_id: str, text: str, link: str | None) -> None:
    host = current_app.config.get("SMTP_HOST")
    if not host:
        return
    user = User.objects(pk=user_id).first()
    if user is None or not user.email:
        return
    msg = EmailMessage()
    msg["Subject"] = f"[VănThư] {text[:120]}"
    msg["From"] = current_app.config.get("SMTP_FROM", "vanthu@localhost")
    msg["To"] = user.email
    base = current_app.config.get("PUBLIC_URL", "")
    msg.set_content(f"{text}\n\n{base}{link or ''}")
    try:
        with smtplib.SMTP(host, int(current_app.config.get("SMTP_PORT", 25)), timeout=10) as smtp:
            smtp.send_message(msg)
    except (OSError, smtplib.SMTPException) as exc:
        log.warning("mail to user=%s failed: %s", user_id, exc)

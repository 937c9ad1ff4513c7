"""E-mail delivery of KPI cards: one message per recipient, a send log, resumable runs.

Pay data is confidential, so this package is built around three rules:

* **one message, one recipient**: every :class:`Delivery` becomes one message with one ``To`` and
  one envelope recipient; nobody's address appears in anybody else's message;
* **never twice**: a send log (JSON lines, fsync'ed after every message) records what went out; a
  rerun after a failure sends only what was not sent, and a lock stops two runs at once;
* **nothing guessed**: a missing or malformed address is reported, never "fixed".

:func:`send_all` is the entry point (``xl-kpi distribute --mail`` calls it); :func:`build_message`
and :func:`check_address` are usable on their own. See ``docs/mail.md``.

Where things are:

* :mod:`~xl_kpi.delivery.mail.model`: :class:`Delivery`, :class:`SendReport`, the errors;
* :mod:`~xl_kpi.delivery.mail.addresses`: :func:`check_address`, ``--smtp HOST:PORT``;
* :mod:`~xl_kpi.delivery.mail.compose`: default texts (en/ru), templates, the MIME message;
* :mod:`~xl_kpi.delivery.mail.log`: the send log and its OS lock;
* :mod:`~xl_kpi.delivery.mail.smtp`: :class:`SmtpConfig`, connecting under deadlines, one transaction;
* :mod:`~xl_kpi.delivery.mail.send`: :func:`send_all`, the run.
"""

from __future__ import annotations

from xl_kpi.delivery.mail.addresses import check_address
from xl_kpi.delivery.mail.compose import TEMPLATE_FIELDS, build_message, render_template
from xl_kpi.delivery.mail.model import KINDS, LANGUAGES, Delivery, MailError, SendReport, SmtpDownError
from xl_kpi.delivery.mail.send import send_all
from xl_kpi.delivery.mail.smtp import PASSWORD_ENV, SmtpConfig

__all__ = [
    "KINDS",
    "LANGUAGES",
    "PASSWORD_ENV",
    "TEMPLATE_FIELDS",
    "Delivery",
    "MailError",
    "SendReport",
    "SmtpConfig",
    "SmtpDownError",
    "build_message",
    "check_address",
    "render_template",
    "send_all",
]

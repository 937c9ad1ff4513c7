"""Get each KPI card to the right person, and only to that person (``xl-kpi distribute``).

After ``xl-kpi generate`` has written ``OUT``, :func:`distribute` builds bundles from it:

* ``--by employee``: one bundle per carded employee with only their card;
* ``--by manager``: one bundle per manager with the cards of their direct reports and a team
  summary workbook holding only those rows and totals;
* ``--by department``: the same per department.

Layout (everything replaced as a whole on a rerun: built in a staging folder, then swapped in)::

    OUT/distribution/index.csv            bundle, recipient, recipient_email, employee_id, file, sha256, ...
    OUT/distribution/passwords.csv        with --encrypt only: for HR, never inside a bundle or a message
    OUT/distribution/<by>/<bundle>/...    or <bundle>.zip with --zip

``--encrypt`` encrypts every workbook of a bundle with the bundle recipient's password
(:mod:`xl_kpi.delivery.crypto`); ``--pdf`` adds (``--pdf-only``: ships instead) a PDF of each card and
team summary, made by up to ``--jobs`` LibreOffice processes sharing one queue
(:mod:`xl_kpi.delivery.office_workers`). :func:`send` mails the
bundles (:mod:`xl_kpi.delivery.mail`) after :mod:`xl_kpi.delivery.isolation` has proved that no bundle holds anybody
else's data. Nothing is guessed: a manager who cannot be matched to exactly one employee, a
missing, malformed or shared e-mail address are reported, and such bundles are not mailed.

Reruns are cheap and stable: a file whose source workbook and password have not changed is
taken over from the previous distribution byte for byte (no new encryption salt, no new PDF),
so the send log of :mod:`xl_kpi.delivery.mail` recognises what was already sent.

Where things are:

* :mod:`~xl_kpi.delivery.distribute.model`: :class:`Options`, :class:`Bundle`, :class:`ShippedFile`,
  :class:`DistributionReport`;
* :mod:`~xl_kpi.delivery.distribute.bundles`: who gets what (:func:`plan_bundles`, :func:`resolve_managers`);
* :mod:`~xl_kpi.delivery.distribute.existing`: the cards in OUT, checked, and the previous distribution;
* :mod:`~xl_kpi.delivery.distribute.pdf`: the PDFs, in one LibreOffice batch;
* :mod:`~xl_kpi.delivery.distribute.encrypt`: the passwords and the encryption;
* :mod:`~xl_kpi.delivery.distribute.write`: ``index.csv``, ``passwords.csv``, the bundles, staged and swapped in;
* :mod:`~xl_kpi.delivery.distribute.build`: :func:`distribute`, the run;
* :mod:`~xl_kpi.delivery.distribute.send`: :func:`send`, the isolation check and the mail.
"""

from __future__ import annotations

# not in __all__, but imported from here by the CLI and the tests: LeakError, INDEX_COLUMNS, PASSWORD_COLUMNS,
# STAGING_PREFIX and the layout names FOLDER, INDEX, PASSWORDS
from xl_kpi.delivery.distribute.build import distribute
from xl_kpi.delivery.distribute.bundles import plan_bundles, resolve_managers
from xl_kpi.delivery.distribute.model import BY_MODES, Bundle, DistributionReport, Options, ShippedFile, UsageError
from xl_kpi.delivery.distribute.send import LeakError as LeakError
from xl_kpi.delivery.distribute.send import MailOutcome, deliveries, send
from xl_kpi.delivery.distribute.write import INDEX_COLUMNS as INDEX_COLUMNS
from xl_kpi.delivery.distribute.write import PASSWORD_COLUMNS as PASSWORD_COLUMNS
from xl_kpi.delivery.distribute.write import STAGING_PREFIX as STAGING_PREFIX
from xl_kpi.delivery.distribute.write import zip_bytes
from xl_kpi.outputs.layout import FOLDER as FOLDER
from xl_kpi.outputs.layout import INDEX as INDEX
from xl_kpi.outputs.layout import PASSWORDS as PASSWORDS

__all__ = [
    "BY_MODES",
    "Bundle",
    "DistributionReport",
    "MailOutcome",
    "Options",
    "ShippedFile",
    "UsageError",
    "deliveries",
    "distribute",
    "plan_bundles",
    "resolve_managers",
    "send",
    "zip_bytes",
]

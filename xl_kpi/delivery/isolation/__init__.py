"""The isolation check: prove that no file meant for one person holds another person's pay data.

:func:`check` opens every file ``xl-kpi generate`` and ``xl-kpi distribute`` produced for a
person (not the HR-only files: ``summary.xlsx``, ``results/``, ``index.csv``, ``passwords.csv``):

* ``cards/**.xlsx``: meant for the employee ``manifest.csv`` lists it for;
* ``distribution/<by>/<bundle>`` (folder or ``.zip``): meant for the bundle's members, as
  ``distribution/index.csv`` lists them (a manager sees their team, an employee themself);
* ``outbox/*.eml`` (``--dry-run`` messages): meant for the addressee; the audience is every
  bundle ``index.csv`` addresses to that e-mail address.

Every file is reduced to text: workbooks are unzipped and every XML part read (cell values
and cached formula results, shared and inline strings, sheet and defined names, document
properties, chart caches, drawings, comments); encrypted workbooks are decrypted with
``passwords.csv`` (and their raw bytes must hold no plain name or number at all); PDFs go
through ``pdftotext``; zip archives, e-mails and their attachments are opened recursively, and
their file names count as text too.

Then, for every employee who is *not* in the file's audience, none of these may occur:

* **name**: the full name as in the plan, compared without regard to case, ``ё``/``е`` and white
  space (so a name wrapped over two lines in a PDF still counts);
* **id**: the employee id as a whole token (``1001`` does not match ``21001`` or ``1,001.50``);
  ids of 1-3 digits only as a whole text cell or at the start of a file name (``7`` is
  everywhere: row numbers, dates, percentages);
* **amount**: their bonus, total pay or salary, in any way it is written (``22950``,
  ``22950.0``, ``22 950,00``, ``22,950.00``, ``22950.000000000004``): every number in the file
  is parsed, so the format does not matter.

False positives are avoided, not waved through:

* a name that is also legitimately in the file is not evidence: the audience's own names and the
  names of their managers (a card says who the manager is) are masked before searching, so a
  namesake of an audience member is not flagged by name (their id and amounts still are);
* an amount or numeric id that equals any number of the audience's own data (their salaries,
  pools, bonuses, KPI bases, norms, facts, line bonuses, the team's totals, the period) is not
  evidence: two employees with the same bonus, an id that is also a KPI fact;
* digits inside an occurrence of a name the file may show ("Иван Петров 4050") are part of the name, not
  an amount; the same number written anywhere else is still read;
* amounts below 1,000 without kopecks (``500``) are too common to mean anything (percentages,
  thresholds, KPI values) and are not used; names and ids still are;
* in the text of a PDF, whole multiples of 250 (``50,000.00``) are not evidence either: chart axes
  print such ticks, and they belong to nobody (the workbooks, where axes are not stored, still
  count them);
* XML is read as content only: layout numbers (drawing anchors and offsets, chart indexes) and
  attributes other than names and titles are not searched for ids or amounts.

Encrypted workbooks are also searched *as bytes*, before decryption: no name (UTF-8 or UTF-16)
of anybody, no id of five characters or more and no amount of five digits or more may be
readable (shorter numbers occur by chance in ciphertext); the container's own clear-text
parameters (``spinCount="100000"``, salts) are blanked first.

Integrity findings are reported with the leaks, because the check can only vouch for what it
can read: a file in a bundle that ``index.csv`` does not list (``unlisted``), a file that differs
from the sha256 recorded for it (``modified``), a listed file that is gone (``missing``), a
file that cannot be opened or decrypted (``unreadable``), an e-mail with more than one
recipient or to an address that several employees share (``recipients``).

Where things are: :mod:`~xl_kpi.delivery.isolation.model` (:class:`Leak`, :class:`IsolationReport`,
the thresholds above), :mod:`~.text` (files reduced to text, :func:`norm_name`, :func:`numbers_in`),
:mod:`~.audience` (who may see what), :mod:`~.scan` (the matching), :mod:`~.opener` (decrypting,
unzipping, e-mails, recursively) and :mod:`~.check` (:func:`check`, :func:`check_report`: which file
is meant for whom, integrity).
"""

from __future__ import annotations

from xl_kpi.delivery.isolation.check import check, check_report
from xl_kpi.delivery.isolation.model import IsolationReport, Leak
from xl_kpi.delivery.isolation.text import norm_name, numbers_in

__all__ = ["IsolationReport", "Leak", "check", "check_report", "norm_name", "numbers_in"]

"""Password protection of workbooks: real Office encryption, as Excel's "Encrypt with Password".

:func:`encrypt_xlsx` wraps an xlsx in the ECMA-376 *agile* encryption container that Excel 2010+
writes (AES-256-CBC, SHA-512, 100,000 password-hashing rounds, random salts, HMAC integrity),
using msoffcrypto-tool. Excel, LibreOffice and msoffcrypto open it with the password; without
it the file is an OLE compound file holding ciphertext only: no name, number or sheet name of
the employee is readable.

Passwords come from HR (a CSV ``employee_id,password``, :func:`read_passwords`) or are made
by :func:`generate_password`: 4 groups of 5 characters from a 32-character alphabet without
look-alikes (0/O, 1/I), from :mod:`secrets`: 32**20 = 2**100 possibilities, easy to dictate.
"""

from __future__ import annotations

import csv
import io
import os
import secrets
from pathlib import Path

from xl_kpi.engine.errors import KpiError
from xl_kpi.inputs.problems import Problems
from xl_kpi.outputs.csvsafe import restore

__all__ = [
    "ALPHABET",
    "PASSWORD_BITS",
    "WrongPasswordError",
    "decrypt_xlsx",
    "encrypt_xlsx",
    "generate_password",
    "is_encrypted",
    "read_passwords",
]

ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
"""32 symbols: digits 2-9 and capitals without I and O (look-alikes of 1 and 0)."""
GROUPS, GROUP_LEN = 4, 5
PASSWORD_BITS = GROUPS * GROUP_LEN * 5
"""Strength of a generated password: 20 symbols × log2(32) = 100 bits."""
MIN_LENGTH = 8
"""Shortest password accepted from a passwords file."""

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


class WrongPasswordError(KpiError):
    """The password does not open the encrypted workbook."""


def generate_password() -> str:
    """A fresh random password like ``K7QX2-M9TZC-4HWPA-R8NDE`` (100 bits, :mod:`secrets`)."""
    return "-".join("".join(secrets.choice(ALPHABET) for _ in range(GROUP_LEN)) for _ in range(GROUPS))


def is_encrypted(data: bytes) -> bool:
    """True when ``data`` is an encrypted Office file (an OLE container, not a plain zip)."""
    return data[:8] == OLE_MAGIC


def encrypt_xlsx(data: bytes, password: str) -> bytes:
    """The xlsx ``data`` encrypted with ``password`` (ECMA-376 agile: AES-256, SHA-512)."""
    from msoffcrypto.format.ooxml import OOXMLFile

    if not password:
        raise KpiError("an empty password encrypts nothing")
    if is_encrypted(data):
        raise KpiError("the workbook is already encrypted")
    out = io.BytesIO()
    OOXMLFile(io.BytesIO(data)).encrypt(password, out)
    return out.getvalue()


def decrypt_xlsx(data: bytes, password: str) -> bytes:
    """The plain xlsx inside an encrypted workbook; :class:`WrongPasswordError` for a wrong password."""
    import msoffcrypto
    from msoffcrypto import exceptions

    if not is_encrypted(data):
        raise KpiError("the workbook is not encrypted")
    try:
        office = msoffcrypto.OfficeFile(io.BytesIO(data))
        office.load_key(password=password)
        out = io.BytesIO()
        office.decrypt(out)
    except (exceptions.InvalidKeyError, exceptions.DecryptionError) as e:
        raise WrongPasswordError(f"the password does not open the workbook ({e})") from None
    return out.getvalue()


def read_passwords(path: str | os.PathLike[str], problems: Problems, *, ours: bool = False
                   ) -> tuple[dict[str, str], dict[str, str]]:
    """Read HR's passwords CSV: ``({employee_id: password}, {bundle: password})``.

    ``ours``: the file is the ``passwords.csv`` xl_kpi wrote, whose passwords carry its reversible
    formula neutralising (one leading ``'`` removed); in HR's own file a password is read exactly as
    typed, so one that begins with ``'`` stays the password HR handed out (ids lose such a quote in both).

    Columns ``employee_id`` and ``password`` (any order, more columns allowed); an optional
    ``bundle`` column keys rows without an employee id (a manager who is not an employee). The
    ``passwords.csv`` that ``xl-kpi distribute --encrypt`` writes is such a file. Empty, short
    (< 8 characters) and conflicting passwords are reported in ``problems`` as errors.
    """
    p = Path(path)
    name = p.name
    try:
        text = p.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        problems.error("file not found", "give the path of a CSV with the columns employee_id,password", file=str(p))
        return {}, {}
    except UnicodeDecodeError:
        problems.error("not UTF-8 text", "save the file as 'CSV UTF-8'", file=name)
        return {}, {}
    reader = csv.DictReader(io.StringIO(text))
    head = {(h or "").strip().casefold(): h for h in reader.fieldnames or []}
    if "password" not in head or ("employee_id" not in head and "bundle" not in head):
        problems.error("the columns employee_id and password are required", "put them in the first row", file=name,
                       row=1)
        return {}, {}
    by_id: dict[str, str] = {}
    by_bundle: dict[str, str] = {}
    for n, row in enumerate(reader, start=2):
        eid = _plain(row.get(head.get("employee_id", ""), ""))
        bundle = _plain(row.get(head.get("bundle", ""), ""))
        pw = row.get(head["password"]) or ""
        if ours:
            pw = restore(pw)  # as written by distribute: '=… is =…, ''… is '…
        if not eid and not bundle:
            continue
        where = {"file": name, "row": n, "header": "password"}
        if not pw.strip():
            problems.error(f"no password for {eid or bundle}", "fill it in or remove the row", **where)
            continue
        if pw != pw.strip():
            problems.error(f"the password of {eid or bundle} starts or ends with a space",
                           "remove the spaces (nobody could type it reliably)", **where)
            continue
        if len(pw) < MIN_LENGTH:
            problems.error(f"the password of {eid or bundle} is shorter than {MIN_LENGTH} characters",
                           "use a longer one, or leave the employee out to get a generated one", **where)
            continue
        target, key = (by_id, eid) if eid else (by_bundle, bundle)
        if key in target and target[key] != pw:
            problems.error(f"two different passwords for {key}", "keep one row per employee", **where)
            continue
        target[key] = pw
    return by_id, by_bundle


def _plain(value: object) -> str:
    """An id or bundle cell: strip spaces and the quote that neutralises formulas (``'-7`` is the id -7)."""
    return restore(str(value or "").strip())

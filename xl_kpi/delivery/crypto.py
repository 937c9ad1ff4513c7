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
from xl_kpi.i18n import Msg
from xl_kpi.inputs.problems import Problems
from xl_kpi.outputs.csvsafe import restore

__all__ = [
    "ALPHABET",
    "PASSWORD_BITS",
    "BindingError",
    "WrongPasswordError",
    "decrypt_xlsx",
    "encrypt_bound",
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
        raise KpiError(Msg("an empty password encrypts nothing"))
    if is_encrypted(data):
        raise KpiError(Msg("the workbook is already encrypted"))
    out = io.BytesIO()
    OOXMLFile(io.BytesIO(data)).encrypt(password, out)
    return out.getvalue()


class BindingError(KpiError):
    """An encrypted workbook does not open with its password to exactly the plain workbook it was made from."""


SPIN_COUNT = 100_000
"""Excel's password-hashing rounds; kept (weakening the key derivation is not how to be fast)."""


def encrypt_bound(data: bytes, password: str) -> bytes:
    """``data`` encrypted with ``password`` like :func:`encrypt_xlsx`, and proved to open to ``data``.

    The password's key is derived ONCE (the 100,000 SHA-512 rounds) and kept in memory for this
    call only. With it the encrypted bytes *as written* are read back: the spin count is Excel's,
    the password salt is the one the key was derived with, the password verifier decrypts and
    matches (so the password opens the file in Excel), the wrapped package key unwraps to the key
    the package was encrypted with, the package's HMAC is right, and the package decrypts to
    exactly ``data``. Anything else raises :class:`BindingError`. Cost: one key derivation, as
    for encrypting alone; the read-back is a few AES blocks and one pass of the package.
    """
    from msoffcrypto.method.container.ecma376_encrypted import ECMA376Encrypted
    from msoffcrypto.method.ecma376_agile import ECMA376Agile

    if not password:
        raise KpiError(Msg("an empty password encrypts nothing"))
    if is_encrypted(data):
        raise KpiError(Msg("the workbook is already encrypted"))
    info, secret_key, derived = _parameters(password)
    package = ECMA376Agile.encrypt_payload(io.BytesIO(data), info.encryptedKey, secret_key, info.keyData.saltValue)
    encryption_info = ECMA376Agile.get_encryption_information(info, package, secret_key)
    out = io.BytesIO()
    ECMA376Encrypted(package, encryption_info).write_to(out)
    result = out.getvalue()
    _confirm(result, data, derived, info.encryptedKey.saltValue)
    return result


def _parameters(password: str) -> tuple[object, bytes, bytes]:
    """msoffcrypto's agile encryption parameters for ``password``, made with ONE key derivation, and its result.

    The same steps as ``ECMA376Agile.generate_encryption_parameters`` (msoffcrypto's own primitives, in
    its order), which derives the key internally and does not return it.
    """
    from msoffcrypto.method import ecma376_agile as agile

    a = agile.ECMA376Agile
    info = agile.ECMA376AgileEncryptionInfo()
    info.spinCount = SPIN_COUNT
    ek = info.encryptedKey
    ek.saltValue = agile._get_salt(None, ek.saltSize)
    derived = a._derive_iterated_hash_from_password(password, ek.saltValue, ek.hashName, info.spinCount).digest()
    key1, key2, key3 = (a._derive_encryption_key(derived, blk, ek.hashName, ek.keyBits) for blk in
                        (agile.blkKey_VerifierHashInput, agile.blkKey_encryptedVerifierHashValue,
                         agile.blkKey_encryptedKeyValue))
    verifier = agile._resize_buffer(agile._random_buffer(ek.saltSize), agile._round_up(ek.saltSize, ek.blockSize))
    info.encryptedVerifierHashInput = agile._encrypt_aes_cbc(verifier, key1, ek.saltValue)
    hashed = agile._get_hash_func(ek.hashName)(verifier).digest()
    hashed = agile._resize_buffer(hashed, agile._round_up(len(hashed), ek.blockSize))
    info.encryptedVerifierHashValue = agile._encrypt_aes_cbc(hashed, key2, ek.saltValue)
    secret_key = agile._normalize_key(agile._random_buffer(ek.saltSize), ek.keyBits // 8)
    info.encryptedKeyValue = agile._encrypt_aes_cbc(secret_key, key3, ek.saltValue)
    info.keyData.saltValue = agile._get_salt(salt_size=info.keyData.saltSize)
    return info, secret_key, derived


def confirm_binding(encrypted: bytes, plain: bytes, derived: bytes, salt: bytes) -> None:
    """Check that ``encrypted`` opens, with the password whose derived hash is ``derived`` (for ``salt``), to ``plain``.

    No key derivation: ``derived`` is the result of the 100,000 rounds, kept from encrypting.
    :class:`BindingError` says what does not hold.
    """
    _confirm(encrypted, plain, derived, salt)


def _confirm(encrypted: bytes, plain: bytes, derived: bytes, salt: bytes) -> None:
    from msoffcrypto.format.ooxml import OOXMLFile
    from msoffcrypto.method import ecma376_agile as agile

    a = agile.ECMA376Agile
    try:
        office = OOXMLFile(io.BytesIO(encrypted))
        info = office.info
        if office.type != "agile":
            raise BindingError(Msg("not agile encryption ({kind})", kind=str(office.type)))
        if info["spinValue"] != SPIN_COUNT:
            raise BindingError(Msg("spin count {spin}, not Excel's {excel}", spin=info["spinValue"], excel=SPIN_COUNT))
        if info["passwordSalt"] != salt:
            raise BindingError(Msg("the password salt is not the one the key was derived with"))
        alg, bits = info["passwordHashAlgorithm"], info["passwordKeyBits"]
        key1, key2, key3 = (a._derive_encryption_key(derived, blk, alg, bits) for blk in
                            (agile.blkKey_VerifierHashInput, agile.blkKey_encryptedVerifierHashValue,
                             agile.blkKey_encryptedKeyValue))
        hash_input = agile._decrypt_aes_cbc(info["encryptedVerifierHashInput"], key1, salt)
        expected = agile._decrypt_aes_cbc(info["encryptedVerifierHashValue"], key2, salt)
        if agile._get_hash_func(alg)(hash_input).digest() != expected:
            raise BindingError(Msg("the password verifier does not match: the password would not open the file"))
        office.secret_key = agile._decrypt_aes_cbc(info["encryptedKeyValue"], key3, salt)
        out = io.BytesIO()
        office.decrypt(out, verify_integrity=True)
    except BindingError:
        raise
    except Exception as e:  # msoffcrypto/olefile raise many kinds on a damaged container
        raise BindingError(Msg("the encrypted file cannot be read back ({kind}: {error})", kind=type(e).__name__,
                               error=str(e))) from None
    if out.getvalue() != plain:
        raise BindingError(Msg("the encrypted file does not decrypt to the checked workbook"))


def decrypt_xlsx(data: bytes, password: str) -> bytes:
    """The plain xlsx inside an encrypted workbook; :class:`WrongPasswordError` for a wrong password."""
    import msoffcrypto
    from msoffcrypto import exceptions

    if not is_encrypted(data):
        raise KpiError(Msg("the workbook is not encrypted"))
    try:
        office = msoffcrypto.OfficeFile(io.BytesIO(data))
        office.load_key(password=password)
        out = io.BytesIO()
        office.decrypt(out, verify_integrity=True)  # a changed byte is refused, never parsed as a workbook
    except (exceptions.InvalidKeyError, exceptions.DecryptionError) as e:
        raise WrongPasswordError(Msg("the password does not open the workbook ({error})", error=str(e))) from None
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
        problems.error(Msg("file not found"),
                       Msg("give the path of a CSV with the columns employee_id,password"), file=str(p))
        return {}, {}
    except UnicodeDecodeError:
        problems.error(Msg("not UTF-8 text"), Msg("save the file as 'CSV UTF-8'"), file=name)
        return {}, {}
    reader = csv.DictReader(io.StringIO(text))
    head = {(h or "").strip().casefold(): h for h in reader.fieldnames or []}
    if "password" not in head or ("employee_id" not in head and "bundle" not in head):
        problems.error(Msg("the columns employee_id and password are required"),
                       Msg("put them in the first row"), file=name,
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
            problems.error(Msg("no password for {value}", value=eid or bundle),
                           Msg("fill it in or remove the row"), **where)
            continue
        if pw != pw.strip():
            problems.error(Msg("the password of {value} starts or ends with a space", value=eid or bundle),
                           Msg("remove the spaces (nobody could type it reliably)"), **where)
            continue
        if len(pw) < MIN_LENGTH:
            problems.error(Msg("the password of {value} is shorter than {min_length} characters",
                               value=eid or bundle, min_length=MIN_LENGTH),
                           Msg("use a longer one, or leave the employee out to get a generated one"), **where)
            continue
        target, key = (by_id, eid) if eid else (by_bundle, bundle)
        if key in target and target[key] != pw:
            problems.error(Msg("two different passwords for {key}", key=key), Msg("keep one row per employee"), **where)
            continue
        target[key] = pw
    return by_id, by_bundle


def _plain(value: object) -> str:
    """An id or bundle cell: strip spaces and the quote that neutralises formulas (``'-7`` is the id -7)."""
    return restore(str(value or "").strip())

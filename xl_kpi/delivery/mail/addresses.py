"""Addresses and ``--smtp HOST:PORT``: checked, never corrected (a bad address is reported, not fixed)."""

from __future__ import annotations

import email.utils
import re
import unicodedata
from email.headerregistry import Address

from xl_kpi.engine.errors import KpiError
from xl_kpi.i18n import English, Msg

# --------------------------------------------------------------------------------------------
# Addresses and options

_LOCAL_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+")
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_JUNK = set('<>()[]",;:\\')


def check_address(address: str) -> str | None:
    """``None`` when ``address`` is a plain, usable e-mail address, else the reason in plain words.

    Only the bare form ``name@example.com`` is accepted: no display name, brackets, comments, quotes,
    spaces, line breaks or second address; one ``@``; a domain with a dot. The domain may be
    international (``почта.рф``), the part before ``@`` must be Latin. Nothing is looked up.

    >>> check_address("anna.petrova@example.com") is None
    True
    >>> check_address("anna.petrova@example")
    "the domain after '@' has no dot (like example.com)"
    """
    if address is None or (isinstance(address, float) and address != address):
        return English(Msg("no e-mail address"))
    if not isinstance(address, str):
        return English(Msg("not text but {kind}", kind=type(address).__name__))
    if not address.strip():
        return English(Msg("no e-mail address"))
    if any(ch in "\r\n" or unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in address):
        return English(Msg("contains a line break or another invisible control character"))
    if _JUNK & set(address):
        return English(Msg("write the bare address (name@example.com), without a name, quotes, brackets or a second "
                           "address"))
    if any(ch.isspace() for ch in address):
        return English(Msg("contains a space (at the start or end)") if address.strip() == address.replace(" ", "")
                       else Msg("contains a space"))
    n = address.count("@")
    if n == 0:
        return English(Msg("no '@'"))
    if n > 1:
        return English(Msg("more than one '@'"))
    local, domain = address.split("@")
    if not local:
        return English(Msg("nothing before '@'"))
    if not domain:
        return English(Msg("nothing after '@'"))
    if not local.isascii():
        return English(Msg("non-Latin letters before '@' (most mail servers refuse them)"))
    if len(local) > 64:
        return English(Msg("the part before '@' is longer than 64 characters"))
    if not all(_LOCAL_ATOM.fullmatch(part) for part in local.split(".")):
        return English(Msg("the part before '@' starts or ends with a dot, has two dots in a row, or has characters "
                           "not allowed"))
    if "." not in domain:
        return English(Msg("the domain after '@' has no dot (like example.com)"))
    labels = domain.split(".")
    if any(not label for label in labels):
        return English(Msg("the domain after '@' has an empty part (two dots in a row, or a dot at the start or end)"))
    try:
        ascii_domain = _ascii_domain(domain)
    except UnicodeError:
        return English(Msg("the domain after '@' is not a valid domain name"))
    if len(ascii_domain) > 253 or not all(_LABEL.fullmatch(label) for label in ascii_domain.split(".")):
        return English(Msg("the domain after '@' is not a valid domain name (letters, digits and inner hyphens only)"))
    if ascii_domain.rsplit(".", 1)[1].isdigit():
        return English(Msg("the domain after '@' is a number, not a name"))
    try:
        parsed = Address(addr_spec=address)
    except Exception:
        return English(Msg("not a valid e-mail address"))
    if parsed.addr_spec != address or email.utils.parseaddr(address) != ("", address):
        return English(Msg("not a valid e-mail address"))
    return None


def _ascii_domain(domain: str) -> str:
    return domain if domain.isascii() else domain.encode("idna").decode("ascii")


def _envelope(address: str) -> tuple[str, str]:
    """(local part, ASCII domain) of a checked address."""
    local, domain = address.split("@")
    return local, _ascii_domain(domain)


def _parse_host_port(text: str, default_port: int) -> tuple[str, int]:
    s = (text or "").strip()
    if not s:
        raise KpiError(Msg("--smtp needs HOST:PORT, e.g. smtp.example.com:587"))
    port_text: str | None = None
    if s.startswith("["):
        end = s.find("]")
        if end < 0:
            raise KpiError(Msg("--smtp {text!r}: missing ']' after the IPv6 address (write [::1]:25)", text=text))
        host, rest = s[1:end], s[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise KpiError(Msg("--smtp {text!r}: expected ':PORT' after ']'", text=text))
            port_text = rest[1:]
        if ":" not in host:
            raise KpiError(Msg("--smtp {text!r}: brackets are for IPv6 addresses only", text=text))
    elif s.count(":") > 1:
        raise KpiError(Msg("--smtp {text!r}: write an IPv6 address in brackets, like [::1]:25", text=text))
    else:
        host, sep, port_text_ = s.partition(":")
        port_text = port_text_ if sep else None
    if not host or any(ch.isspace() or ch in "/@" for ch in host):
        raise KpiError(Msg("--smtp {text!r}: no usable host name", text=text))
    if port_text is None:
        return host, default_port
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise KpiError(Msg("--smtp {text!r}: the port must be a number from 1 to 65535", text=text))
    return host, int(port_text)


def _is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    import ipaddress

    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False

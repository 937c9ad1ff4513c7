"""Messages of ``xl-kpi`` in English and Russian: Python's :mod:`gettext` with the catalog shipped in
``xl_kpi/locale/ru/LC_MESSAGES/xl_kpi.po`` (compiled to ``.mo`` by ``make i18n``).

English is the source language (the msgid is the English text). Two ways to mark a text:

* :func:`tr` / :func:`ntr` translate now, into the current language (what the CLI prints);
* :class:`Msg` / :class:`Plural` keep the msgid and the parameters and render later, in the reader's
  language: a :class:`~xl_kpi.inputs.problems.Problem` is created deep in the inputs, long before the
  language of the run is known.

Placeholders are ``str.format`` fields (``{name}``, ``{fact:.6g}``); a parameter that is itself a
:class:`Msg` (or an exception carrying one) is rendered in the same language. The current language is a
context variable: :func:`using` sets it for a command and restores it afterwards.

>>> str(Msg("row {row}", row=7))
'row 7'
>>> Plural("{n} error", "{n} errors", 5).render("ru")
'5 ошибок'
"""

from __future__ import annotations

import gettext
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from pathlib import Path
from typing import Any

LANGUAGES = ("en", "ru")
DOMAIN = "xl_kpi"
LOCALE_DIR = Path(__file__).parent / "locale"

_current: ContextVar[str] = ContextVar("xl_kpi_language", default="en")


@cache
def translation(lang: str) -> gettext.NullTranslations:
    """The catalog of ``lang``; English (and an unknown language) is the msgid itself."""
    if lang == "en" or lang not in LANGUAGES:
        return gettext.NullTranslations()
    return gettext.translation(DOMAIN, LOCALE_DIR, languages=[lang], fallback=True)


def current() -> str:
    """The language messages are rendered in now (en unless a command set another)."""
    return _current.get()


def set_language(lang: str | None) -> None:
    """Render in ``lang`` from now on (inside :func:`using`, which restores the previous one)."""
    if lang:
        _current.set(lang if lang in LANGUAGES else "en")


@contextmanager
def using(lang: str | None) -> Iterator[str]:
    """Render in ``lang`` (None: keep the current one) inside the block; restored afterwards, even when
    :func:`set_language` changed it in between."""
    token = _current.set(lang if lang in LANGUAGES else _current.get())
    try:
        yield _current.get()
    finally:
        _current.reset(token)


def system_language(environ: Mapping[str, str] | None = None) -> str:
    """ru when the system locale is Russian (LC_ALL, LC_MESSAGES, LANG, as POSIX orders them), else en."""
    env = os.environ if environ is None else environ
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = env.get(name, "")
        if value:
            return "ru" if value.casefold().startswith("ru") else "en"
    return "en"


def resolve(flag: str | None = None, plan: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """The language of a command's messages: --lang, else the plan's Settings, else the system locale, else en."""
    for lang in (flag, plan):
        if lang in LANGUAGES:
            return lang  # type: ignore[return-value]
    return system_language(environ)


def as_msg(value: Any) -> Any:
    """``value`` as a :class:`Msg` when it is one, an :class:`English` text, an engine
    :class:`~xl_kpi.engine.errors.KpiText` or an exception carrying one of them; else ``value`` itself."""
    if isinstance(value, BaseException) and len(value.args) == 1:
        inner = as_msg(value.args[0])
        return inner if isinstance(inner, Msg) else value
    if isinstance(value, English):
        return value.msg
    if isinstance(value, str) and hasattr(value, "msgid") and hasattr(value, "params"):  # engine.errors.KpiText
        return Msg(value.msgid, **{k: as_msg(v) for k, v in value.params.items()})
    return value


def render(value: Any, lang: str | None = None) -> str:
    """A text, a :class:`Msg` or an exception whose message is one, in ``lang`` (default: the current one)."""
    value = as_msg(value)
    if isinstance(value, Msg):
        return value.render(lang)
    return "" if value is None else str(value)


def _format(text: str, params: Mapping[str, Any], lang: str) -> str:
    if not params:
        return text
    return text.format(**{k: render(v, lang) if isinstance(v, (Msg, str, BaseException)) else v
                          for k, v in params.items()})


def tr(msgid: str, /, **params: Any) -> str:
    """``msgid`` translated into the current language now, its ``{placeholders}`` filled in."""
    lang = current()
    return _format(translation(lang).gettext(msgid), params, lang)


def ntr(singular: str, plural: str, n: int, /, **params: Any) -> str:
    """The plural form for ``n`` (``{n}`` is filled in too), translated into the current language now."""
    return Plural(singular, plural, n, **params).render()


def N_(msgid: str, /) -> str:
    """``msgid`` itself, marked for the catalog: a text translated where it is shown (an option's help,
    read by the command line when it renders ``--help``)."""
    return msgid


class Msg:
    """A message kept as msgid + parameters and rendered in a language when it is shown."""

    __slots__ = ("msgid", "params")

    def __init__(self, msgid: str, /, **params: Any) -> None:
        self.msgid = msgid
        self.params = params

    def render(self, lang: str | None = None) -> str:
        lang = lang or current()
        return _format(translation(lang).gettext(self.msgid), self.params, lang)

    def __str__(self) -> str:
        return self.render()

    def __repr__(self) -> str:
        return f"Msg({self.msgid!r}, {self.params!r})"

    def _key(self) -> tuple[Any, ...]:
        return (type(self), self.msgid, getattr(self, "plural", None), getattr(self, "n", None), self.params)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Msg) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self.msgid)

    def __reduce__(self) -> tuple[Any, ...]:  # for the worker processes
        return _rebuild, (type(self), self._key()[1:])


class Plural(Msg):
    """A message with singular and plural forms chosen by ``n`` (Russian has three: 1 ошибка, 2 ошибки, 5 ошибок)."""

    __slots__ = ("n", "plural")

    def __init__(self, singular: str, plural: str, n: int, /, **params: Any) -> None:
        super().__init__(singular, n=n, **params)
        self.plural = plural
        self.n = int(n)

    def render(self, lang: str | None = None) -> str:
        lang = lang or current()
        return _format(translation(lang).ngettext(self.msgid, self.plural, self.n), self.params, lang)

    def __repr__(self) -> str:
        return f"Plural({self.msgid!r}, {self.plural!r}, {self.n}, {self.params!r})"


class Join(Msg):
    """Messages joined by ``sep``, each rendered in the reader's language (a list in a message).

    >>> Join(", ", [Msg("row {row}", row=1), "x"]).render("ru")
    'строка 1, x'
    """

    __slots__ = ()

    def __init__(self, sep: str, parts: Any) -> None:
        super().__init__("{parts}", sep=sep, parts=tuple(parts))

    def render(self, lang: str | None = None) -> str:
        return self.params["sep"].join(render(p, lang) for p in self.params["parts"])

    def __reduce__(self) -> tuple[Any, ...]:
        return Join, (self.params["sep"], self.params["parts"])


class English(str):
    """The English text of a :class:`Msg` that keeps the Msg: a ``str`` where text is expected (a pandas
    column of cell messages, ``"too large" in message``), yet rendered in the reader's language by
    :func:`render`, a :class:`Msg` parameter or a :class:`~xl_kpi.inputs.problems.Problem`.

    >>> e = English(Msg("row {row}", row=7))
    >>> e == "row 7", render(e, "ru")
    (True, 'строка 7')
    """

    msg: Msg

    def __new__(cls, msg: Msg) -> English:
        self = super().__new__(cls, msg.render("en"))
        self.msg = msg
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        return English, (self.msg,)


def english(value: Any) -> Any:
    """``value`` as :class:`English` when it is a :class:`Msg`, an engine text or an exception carrying one
    (else as it is: an exception becomes its text)."""
    msg = as_msg(value)
    if isinstance(msg, Msg):
        return English(msg)
    return str(value) if isinstance(value, BaseException) else value


def _rebuild(cls: type[Msg], key: tuple[Any, ...]) -> Msg:
    msgid, plural, n, params = key
    if cls is Plural:
        return Plural(msgid, plural, n, **{k: v for k, v in params.items() if k != "n"})
    return Msg(msgid, **params)

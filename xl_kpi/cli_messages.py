"""The command line's own texts in the reader's language: ``--help`` (command and option help, typer's panel
titles, the usage line) and the usage errors of the argument parser ("No such option", "Missing option",
"Invalid value for ...").

The language of these comes from the command line alone, before any plan is read: ``--lang`` anywhere in it
(``xl-kpi generate --lang ru --help``), else the system locale (LC_ALL, LC_MESSAGES, LANG).

Typer 0.29 vendors click, whose messages are plain f-strings (no gettext), so a usage error is translated
from its structured data (``NoSuchOption.option_name``, ``MissingParameter.param``, ``BadParameter.message``)
where it is raised, in :meth:`Command.make_context`; the value errors of click's and pydantic's types
("file 'x' does not exist.", "Input should be greater than or equal to 1") by their few known patterns.
Typer's fixed texts ("Options", "[required]", "Try ... for help.") are its module-level settings in
``typer.rich_utils`` (like its ``STYLE_*`` ones); :func:`typer_texts` sets them for a Russian run and
restores them. English is left exactly as typer and click write it.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from difflib import get_close_matches
from typing import Any

from typer._click import exceptions as click_errors  # the vendored click of typer (pinned in constraints.txt)
from typer.core import TyperCommand, TyperGroup

from xl_kpi.cli_values import plain_values
from xl_kpi.i18n import N_, Msg, current, resolve, translation, using

TYPER_TEXTS = {
    "DEPRECATED_STRING": N_("(deprecated) "),
    "DEFAULT_STRING": N_("[default: {value}]"),
    "ENVVAR_STRING": N_("[env var: {value}]"),
    "REQUIRED_LONG_STRING": N_("[required]"),
    "ARGUMENTS_PANEL_TITLE": N_("Arguments"),
    "OPTIONS_PANEL_TITLE": N_("Options"),
    "COMMANDS_PANEL_TITLE": N_("Commands"),
    "ERRORS_PANEL_TITLE": N_("Error"),
    "ABORTED_TEXT": N_("Aborted."),
    "RICH_HELP": N_("Try [blue]'{command_path} {help_option}'[/] for help."),
}
"""typer.rich_utils' fixed texts and their message ids (``{value}`` is typer's positional ``{}``)."""
USAGE = N_("Usage: ")
HELP_OPTION = N_("Show this message and exit.")
"""click's help of --help: its Russian comes from the catalog when the help is shown."""


def argv_language(args: Sequence[str]) -> str | None:
    """The value of --lang in the command line (--lang ru or --lang=ru), if any."""
    for i, a in enumerate(args):
        if a == "--lang" and i + 1 < len(args):
            return args[i + 1]
        if a.startswith("--lang="):
            return a.split("=", 1)[1]
    return None


def text(msgid: str) -> str:
    """``msgid`` (a help text, a typer text) in the current language, its ``{fields}`` left as they are."""
    return translation(current()).gettext(msgid) if msgid else msgid


@contextmanager
def typer_texts() -> Iterator[None]:
    """typer's fixed texts in the current language inside the block (nothing changes in English)."""
    if current() == "en":
        yield
        return
    from typer import rich_utils

    saved = {name: getattr(rich_utils, name) for name in TYPER_TEXTS}
    try:
        for name, msgid in TYPER_TEXTS.items():
            setattr(rich_utils, name, text(msgid).replace("{value}", "{}"))
        yield
    finally:
        for name, value in saved.items():
            setattr(rich_utils, name, value)


@contextmanager
def _help_in_language(command: Any, ctx: Any) -> Iterator[None]:
    """The help of ``command``, of its parameters and (a group) of its commands translated inside the block;
    typer's type names (``<list[str]>``) read as words in every language (``<values>``, ``<значения>``)."""
    english = current() == "en"
    saved: list[tuple[Any, str, Any]] = []

    def swap(obj: Any, attr: str) -> None:
        value = getattr(obj, attr, None)
        if not english and isinstance(value, str) and value:
            saved.append((obj, attr, value))
            setattr(obj, attr, text(value))

    def retype(param: Any) -> None:  # typer's "<file>", "<int range>" after the option, in the language
        shown = getattr(param, "display_type_rich", None)
        if callable(shown):
            saved.append((param, "display_type_rich", None))
            param.display_type_rich = lambda ctx, shown=shown: _type_label(shown(ctx=ctx))

    swap(command, "help")
    for param in command.get_params(ctx):
        swap(param, "help")
        swap(param, "metavar")  # an argument's name in the Arguments panel and the usage line
        retype(param)
    for sub in getattr(command, "commands", {}).values():
        swap(sub, "help")
        swap(sub, "short_help")
    try:
        yield
    finally:
        for obj, attr, value in reversed(saved):
            if value is None:
                delattr(obj, attr)  # the instance's wrapper gone: the class's method again
            else:
                setattr(obj, attr, value)


TYPE_LABELS = {"bool": N_("yes/no"), "str": N_("text"), "file": N_("file"), "dir": N_("folder"),
               "path": N_("path"), "int": N_("whole number"), "int range": N_("whole number"),
               "float": N_("number"), "list[str]": N_("values"), "list[Path]": N_("folders")}
"""typer's type names shown in --help (``<bool>``, ``<list[str]>``) and their wording for a reader."""


def _type_label(shown: str | None) -> str | None:
    """``<file>`` → ``<файл>`` (an unknown name, or a metavar the command set, as it is)."""
    if not shown or not (shown.startswith("<") and ">" in shown):
        return shown
    name, _, rest = shown[1:].partition(">")
    return f"<{text(TYPE_LABELS[name])}>{rest}" if name in TYPE_LABELS else shown


USAGE_WORDS = (N_("OPTIONS"), N_("COMMAND"), N_("ARGS"), N_("OUT"), N_("FILE"), N_("HOST:PORT"), N_("ADDR"))
"""The capitalised words of usage lines and errors (click's ``[OPTIONS]``, the ``metavar=`` cli.py gives its
arguments and options) as message ids."""


def _usage_words(line: str) -> str:
    """``[OPTIONS] {OUT}`` → ``[ПАРАМЕТРЫ] {ПАПКА}`` in Russian: each known word in the current language."""
    return re.sub(r"[A-Z][A-Z:]*[A-Z]", lambda m: text(m.group()) if m.group() in USAGE_WORDS else m.group(), line)


def _usage_pieces(command: Any, ctx: Any) -> str:
    """The usage line after the command's path, its words in the current language."""
    return _usage_words(" ".join(command.collect_usage_pieces(ctx)))


# ------------------------------------------------------------------------------------ usage errors


def _hint(e: Any) -> str:
    hint = e.param_hint if e.param_hint is not None else (e.param.get_error_hint() if e.param else None)
    if isinstance(hint, (list, tuple)):
        return " / ".join(repr(_usage_words(h)) for h in hint)
    return _usage_words(str(hint or ""))


_VALUE_ERRORS: list[tuple[re.Pattern[str], Callable[[re.Match[str]], Msg]]] = [
    (re.compile(r"^file '(.*)' does not exist\.$"), lambda m: Msg("file '{path}' does not exist.", path=m[1])),
    (re.compile(r"^directory '(.*)' does not exist\.$"),
     lambda m: Msg("folder '{path}' does not exist.", path=m[1])),
    (re.compile(r"^path '(.*)' does not exist\.$"), lambda m: Msg("path '{path}' does not exist.", path=m[1])),
    (re.compile(r"^\w+ '(.*)' is a directory\.$"),
     lambda m: Msg("'{path}' is a folder, not a file.", path=m[1])),
    (re.compile(r"^\w+ '(.*)' is a file\.$"), lambda m: Msg("'{path}' is a file, not a folder.", path=m[1])),
    (re.compile(r"^\w+ '(.*)' is not readable\.$"), lambda m: Msg("'{path}' cannot be read.", path=m[1])),
    (re.compile(r"^Input should be greater than or equal to (\S+)$"),
     lambda m: Msg("the value must be at least {n}", n=m[1])),
    (re.compile(r"^Input should be less than or equal to (\S+)$"),
     lambda m: Msg("the value must be at most {n}", n=m[1])),
    (re.compile(r"^Input should be a valid integer\b.*$"), lambda m: Msg("a whole number is needed")),
]
"""The value errors of typer's types (click's path checks, pydantic's numbers) that a user meets, by pattern."""

_EXTRA = re.compile(r"^Got unexpected extra arguments? ?(?:\(s\))? \((.*)\)$")
_NEEDS_VALUE = re.compile(r"^Option '(.*)' requires an argument\.$")


def _value_error(message: str) -> str:
    for pattern, make in _VALUE_ERRORS:
        m = pattern.match(message)
        if m:
            return make(m).render()
    return message


def translated(e: Exception) -> Exception:
    """A usage error ``e`` as a usage error in the current language (``e`` itself in English or when unknown)."""
    if current() == "en" or not isinstance(e, click_errors.UsageError) or type(e).__name__ == "NoArgsIsHelpError":
        return e
    if isinstance(e, click_errors.NoSuchOption):
        message = Msg("No such option: {name}", name=e.option_name).render()
        if e.possibilities:
            message += " " + Msg("(Possible options: {options})", options=", ".join(sorted(e.possibilities))).render()
    elif isinstance(e, click_errors.MissingParameter):
        kind = e.param_type or (e.param.param_type_name if e.param is not None else "parameter")
        message = (Msg("Missing argument {name}.", name=_hint(e)) if kind == "argument" else
                   Msg("Missing option {name}.", name=_hint(e))).render()
    elif isinstance(e, click_errors.BadParameter):
        message = Msg("Invalid value for {name}: {message}", name=_hint(e), message=_value_error(e.message)).render()
    elif _NEEDS_VALUE.match(e.message):
        message = Msg("Option '{name}' requires a value.", name=_NEEDS_VALUE.match(e.message)[1]).render()
    elif _EXTRA.match(e.message):
        message = Msg("Unexpected extra arguments ({args})", args=_EXTRA.match(e.message)[1]).render()
    else:
        return e
    out = click_errors.UsageError(message, e.ctx)
    out.exit_code = e.exit_code
    return out


# ------------------------------------------------------------------------------------ the classes


class Command(TyperCommand):
    """A typer command whose help and usage errors speak the current language."""

    def make_context(self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any) -> Any:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click_errors.UsageError as e:
            raise translated(e) from None

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        plain_values(self.get_params(ctx))  # typer's coercion of plain values, without pydantic (0.1 s)
        return super().parse_args(ctx, args)

    def format_usage(self, ctx: Any, formatter: Any) -> None:
        formatter.write_usage(ctx.command_path, _usage_pieces(self, ctx), prefix=text(USAGE))

    def format_help(self, ctx: Any, formatter: Any) -> None:
        with _help_in_language(self, ctx):
            super().format_help(ctx, formatter)


class Group(TyperGroup):
    """The ``xl-kpi`` group: picks the language of the command line (:func:`argv_language`, else the system
    locale) for the help and the usage errors, and translates its own ("No such command")."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True, **extra: Any) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        with using(resolve(argv_language(argv))), typer_texts():
            return super().main(argv, prog_name, complete_var, standalone_mode, **extra)

    def make_context(self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any) -> Any:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click_errors.UsageError as e:
            raise translated(e) from None

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        try:
            return super().resolve_command(ctx, args)
        except click_errors.UsageError as e:
            if current() == "en" or not args or args[0] in self.commands:
                raise translated(e) from None
            message = Msg("No such command '{name}'.", name=args[0]).render()
            matches = get_close_matches(args[0], list(self.commands))
            if matches:
                message += " " + Msg("Did you mean {names}?", names=", ".join(f"'{m}'" for m in matches)).render()
            raise click_errors.UsageError(message, e.ctx) from None

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        plain_values(self.get_params(ctx))  # typer's coercion of plain values, without pydantic (0.1 s)
        return super().parse_args(ctx, args)

    def format_usage(self, ctx: Any, formatter: Any) -> None:
        formatter.write_usage(ctx.command_path, _usage_pieces(self, ctx), prefix=text(USAGE))

    def format_help(self, ctx: Any, formatter: Any) -> None:
        with _help_in_language(self, ctx):
            super().format_help(ctx, formatter)

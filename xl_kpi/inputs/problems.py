"""Input problems: collect every one (not just the first), each pinned to file, sheet, row, column.

A :class:`Problem` says what is wrong and how to fix it, in plain language, and where: the row
number as Excel shows it and the column letter and header. :class:`Problems` collects them while
the plan, the facts and the raw data are read; :func:`xl_kpi.validate.render` prints them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from xl_kpi.engine.errors import KpiError
from xl_kpi.i18n import Msg, Plural, as_msg, current, tr, using


class Located(Protocol):
    """What a problem needs of a table (:class:`xl_kpi.inputs.tables.Table` is one): where a cell is."""

    file: str
    sheet: str | None
    letters: dict[str, str]

    def at(self, row: int | None, column: str | None = None) -> dict[str, Any]: ...

Severity = Literal["error", "warning"]

ROW_LIMIT = 5
"""How many cells with the same problem in one column are listed one by one before a summary line."""


Text = str | Msg
"""A message: plain text, or a :class:`~xl_kpi.i18n.Msg` rendered in the reader's language when shown."""


@dataclass(frozen=True)
class Problem:
    """One problem in the inputs: what, where, and how to fix it.

    ``message`` and ``fix`` are the English texts; given as :class:`~xl_kpi.i18n.Msg` they are kept
    (``text``, ``fix_text``) and :meth:`message_in` / :meth:`fix_in` render them in another language.
    """

    severity: Severity
    message: str
    fix: str = ""
    file: str | None = None
    sheet: str | None = None
    row: int | None = None
    column: str | None = None
    header: str | None = None
    text: Msg | None = field(default=None, compare=False, repr=False)
    fix_text: Msg | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        for name, keep in (("message", "text"), ("fix", "fix_text")):
            value = getattr(self, name)
            if isinstance(value, str):
                value = as_msg(value)  # English and engine texts keep their Msg
            if isinstance(value, Msg):
                object.__setattr__(self, keep, value)
                object.__setattr__(self, name, value.render("en"))
            elif value is None:
                object.__setattr__(self, name, "")

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def message_in(self, lang: str | None = None) -> str:
        """The message in ``lang`` (default: the current language)."""
        return self.text.render(lang) if self.text is not None else self.message

    def fix_in(self, lang: str | None = None) -> str:
        """How to fix it, in ``lang`` (default: the current language)."""
        return self.fix_text.render(lang) if self.fix_text is not None else self.fix

    def where(self, lang: str | None = None) -> str:
        """'sheet Plan, row 7, column E (weight)', without the file; '' when nothing is known."""
        with using(lang):
            parts = []
            if self.sheet:
                parts.append(tr("sheet {sheet}", sheet=self.sheet))
            if self.row is not None:
                parts.append(tr("row {row}", row=self.row))
            if self.column:
                parts.append(tr("column {column}", column=self.column)
                             + (f" ({self.header})" if self.header else ""))
            elif self.header:
                parts.append(tr("column {column}", column=self.header))
            return ", ".join(parts)

    def render(self, lang: str | None = None) -> str:
        """'error: file, sheet S, row 7: what. Fix: how' in ``lang`` (default: the current language)."""
        with using(lang):
            where = ", ".join(p for p in (self.file or "", self.where()) if p)
            severity = tr("error") if self.is_error else tr("warning")
            text = f"{severity}: {where + ': ' if where else ''}{self.message_in()}"
            fix = self.fix_in()
            return text + (tr(". Fix: {fix}", fix=fix) if fix else "")

    def __str__(self) -> str:
        return self.render()


class Problems:
    """An ordered collection of :class:`Problem` s, filled in while inputs are read and checked."""

    def __init__(self, items: Iterable[Problem] = ()) -> None:
        self._items: list[Problem] = list(items)
        self._covered: set[tuple[Any, ...]] = set()
        self.language: str | None = None
        """The plan's Settings language when the plan sets one: the language to show these problems in."""

    def cover(self, file: str | None, sheet: str | None, row: int, column: str | None) -> None:
        """Mark a cell as explained (e.g. 'formula with no saved value'): :meth:`cells` skips it from now on,
        so one bad cell gives one error, not also 'the fact is empty'."""
        self._covered.add((file, sheet, int(row), column))

    def add(self, problem: Problem) -> None:
        self._items.append(problem)

    def error(self, message: Text, fix: Text = "", **where: Any) -> None:
        """Record an error; ``where`` takes file, sheet, row, column, header (see :meth:`Table.at`)."""
        self._items.append(Problem("error", message, fix, **where))

    def warning(self, message: Text, fix: Text = "", **where: Any) -> None:
        """Record a warning (reported, but does not fail validation)."""
        self._items.append(Problem("warning", message, fix, **where))

    def cells(
        self,
        severity: Severity,
        table: Located,
        rows: Sequence[int],
        column: str,
        messages: Sequence[Text] | Text,
        fix: Text = "",
        limit: int = ROW_LIMIT,
    ) -> None:
        """One problem per bad cell of a column, the first ``limit`` of them, then one summary line.

        Cells already explained by another problem (see :meth:`cover`) are left out.
        """
        rows = list(rows)
        texts = [messages] * len(rows) if isinstance(messages, (str, Msg)) else list(messages)
        if self._covered:
            letter = table.letters.get(column)
            keep = [(table.file, table.sheet, int(r), letter) not in self._covered for r in rows]
            rows = [r for r, k in zip(rows, keep, strict=True) if k]
            texts = [t for t, k in zip(texts, keep, strict=True) if k]
        for r, text in zip(rows[:limit], texts[:limit], strict=True):
            self._items.append(Problem(severity, text, fix, **table.at(r, column)))
        if len(rows) > limit:
            more = len(rows) - limit
            self._items.append(
                Problem(
                    severity,
                    Plural("{n} more row with the same problem (rows {rows})",
                           "{n} more rows with the same problem (rows {rows})", more, rows=_ranges(rows[limit:])),
                    fix,
                    **table.at(None, column),
                )
            )

    def extend(self, items: Iterable[Problem]) -> None:
        self._items.extend(items)

    def __iter__(self) -> Iterator[Problem]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:  # a collection object is always "there", even when empty
        return True

    def __repr__(self) -> str:
        return f"<Problems: {len(self.errors)} errors, {len(self.warnings)} warnings>"

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self._items if p.is_error]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self._items if not p.is_error]

    @property
    def has_errors(self) -> bool:
        return any(p.is_error for p in self._items)

    def by_file(self) -> dict[str, list[Problem]]:
        """Problems grouped by file (in order of first appearance); '' for problems without a file."""
        out: dict[str, list[Problem]] = {}
        for p in self._items:
            out.setdefault(p.file or "", []).append(p)
        return out

    def summary(self, lang: str | None = None) -> str:
        """'N errors, M warnings' ('1 error', '1 warning' when there is one), in ``lang`` (default: current)."""
        e, w = len(self.errors), len(self.warnings)
        return (Plural("{n} error", "{n} errors", e).render(lang) + ", "
                + Plural("{n} warning", "{n} warnings", w).render(lang))

    def raise_for_errors(self, error: type[InputError] | None = None) -> None:
        """Raise ``error`` (default :class:`InputError`) carrying every problem when any is an error."""
        if self.has_errors:
            raise (error or InputError)(self)


class InputError(KpiError):
    """The inputs have errors; ``.problems`` holds all of them (and the warnings)."""

    def __init__(self, problems: Problems | Iterable[Problem]) -> None:
        self.problems = problems if isinstance(problems, Problems) else Problems(problems)
        super().__init__(self.render("en"))

    def render(self, lang: str | None = None) -> str:
        """'N input errors: the first three; (and K more)' in ``lang`` (default: the current language)."""
        errors = self.problems.errors
        with using(lang):
            head = "; ".join(p.render() for p in errors[:3])
            more = tr(" (and {n} more)", n=len(errors) - 3) if len(errors) > 3 else ""
            return Plural("{n} input error", "{n} input errors", len(errors)).render() + f": {head}{more}"

    def __str__(self) -> str:
        return self.render(current())


# ------------------------------------------------------------------------------------- tables


def _ranges(rows: Sequence[int]) -> str:
    """'5–8, 11, 20–21' for rows 5, 6, 7, 8, 11, 20, 21 (at most 10 runs, then '…')."""
    runs: list[tuple[int, int]] = []
    for r in sorted(set(int(x) for x in rows)):
        if runs and r == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], r)
        else:
            runs.append((r, r))
    text = ", ".join(f"{a}" if a == b else f"{a}–{b}" for a, b in runs[:10])
    return text + (", …" if len(runs) > 10 else "")


def row_ranges(rows: Sequence[int]) -> str:
    """Public form of the row-run formatter used in messages ('5–8, 11')."""
    return _ranges(rows)


# --------------------------------------------------------------------------------- validate


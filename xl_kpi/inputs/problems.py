"""Input problems: collect every one (not just the first), each pinned to file, sheet, row, column.

A :class:`Problem` says what is wrong and how to fix it, in plain language, and where: the row
number as Excel shows it and the column letter and header. :class:`Problems` collects them while
the plan, the facts and the raw data are read; :func:`xl_kpi.validate.render` prints them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from xl_kpi.engine.errors import KpiError


class Located(Protocol):
    """What a problem needs of a table (:class:`xl_kpi.inputs.tables.Table` is one): where a cell is."""

    file: str
    sheet: str | None
    letters: dict[str, str]

    def at(self, row: int | None, column: str | None = None) -> dict[str, Any]: ...

Severity = Literal["error", "warning"]

ROW_LIMIT = 5
"""How many cells with the same problem in one column are listed one by one before a summary line."""


@dataclass(frozen=True)
class Problem:
    """One problem in the inputs: what, where, and how to fix it."""

    severity: Severity
    message: str
    fix: str = ""
    file: str | None = None
    sheet: str | None = None
    row: int | None = None
    column: str | None = None
    header: str | None = None

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def where(self) -> str:
        """'sheet Plan, row 7, column E (weight)', without the file; '' when nothing is known."""
        parts = []
        if self.sheet:
            parts.append(f"sheet {self.sheet}")
        if self.row is not None:
            parts.append(f"row {self.row}")
        if self.column:
            parts.append(f"column {self.column}" + (f" ({self.header})" if self.header else ""))
        elif self.header:
            parts.append(f"column {self.header}")
        return ", ".join(parts)

    def __str__(self) -> str:
        where = ", ".join(p for p in (self.file or "", self.where()) if p)
        text = f"{self.severity}: {where + ': ' if where else ''}{self.message}"
        return text + (f". Fix: {self.fix}" if self.fix else "")


class Problems:
    """An ordered collection of :class:`Problem` s, filled in while inputs are read and checked."""

    def __init__(self, items: Iterable[Problem] = ()) -> None:
        self._items: list[Problem] = list(items)
        self._covered: set[tuple[Any, ...]] = set()

    def cover(self, file: str | None, sheet: str | None, row: int, column: str | None) -> None:
        """Mark a cell as explained (e.g. 'formula with no saved value'): :meth:`cells` skips it from now on,
        so one bad cell gives one error, not also 'the fact is empty'."""
        self._covered.add((file, sheet, int(row), column))

    def add(self, problem: Problem) -> None:
        self._items.append(problem)

    def error(self, message: str, fix: str = "", **where: Any) -> None:
        """Record an error; ``where`` takes file, sheet, row, column, header (see :meth:`Table.at`)."""
        self._items.append(Problem("error", message, fix, **where))

    def warning(self, message: str, fix: str = "", **where: Any) -> None:
        """Record a warning (reported, but does not fail validation)."""
        self._items.append(Problem("warning", message, fix, **where))

    def cells(
        self,
        severity: Severity,
        table: Located,
        rows: Sequence[int],
        column: str,
        messages: Sequence[str] | str,
        fix: str = "",
        limit: int = ROW_LIMIT,
    ) -> None:
        """One problem per bad cell of a column, the first ``limit`` of them, then one summary line.

        Cells already explained by another problem (see :meth:`cover`) are left out.
        """
        rows = list(rows)
        texts = [messages] * len(rows) if isinstance(messages, str) else list(messages)
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
                    f"{more} more row{'s' if more > 1 else ''} with the same problem "
                    f"(rows {_ranges(rows[limit:])})",
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

    def summary(self) -> str:
        """'N errors, M warnings' ('1 error', '1 warning' when there is one)."""
        e, w = len(self.errors), len(self.warnings)
        return f"{e} error{'' if e == 1 else 's'}, {w} warning{'' if w == 1 else 's'}"

    def raise_for_errors(self, error: type[InputError] | None = None) -> None:
        """Raise ``error`` (default :class:`InputError`) carrying every problem when any is an error."""
        if self.has_errors:
            raise (error or InputError)(self)


class InputError(KpiError):
    """The inputs have errors; ``.problems`` holds all of them (and the warnings)."""

    def __init__(self, problems: Problems | Iterable[Problem]) -> None:
        self.problems = problems if isinstance(problems, Problems) else Problems(problems)
        errors = self.problems.errors
        head = "; ".join(str(p) for p in errors[:3])
        more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
        super().__init__(f"{len(errors)} input error{'s' if len(errors) != 1 else ''}: {head}{more}")


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


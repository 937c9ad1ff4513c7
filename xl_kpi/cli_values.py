"""The command line's plain values (text, paths, whole numbers in range) coerced as typer 0.29 does, without
building pydantic TypeAdapters.

Typer 0.29 coerces every option's value through a pydantic TypeAdapter, built on first use: importing pydantic
and building one adapter per option costs about 0.1 s on every command, a fixed cost of each ``validate`` and
``generate`` run. The values xl_kpi's options take are plain: text, paths checked by click's path rules, whole
numbers within a range. :class:`PlainValue` gives the same results for the values it knows
(a path through typer's own :func:`typer._param_types.coerce_cli_path`, the same checks and messages), and
hands anything else (a malformed or out-of-range number, bytes, an empty path, another type) to typer's own
coercion, so typer's results and its error messages stay as they are. typer is pinned in constraints.txt;
tests/test_cli_values.py compares both coercions value by value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args, get_origin

from typer._coercion import RuntimeParam, TypeDescriptor, build_runtime_param
from typer._param_types import coerce_cli_path

_WHOLE = re.compile(r"0|[1-9][0-9]{0,17}")
"""A whole number as a user types it and int() reads it exactly as pydantic does (no sign, no leading zero,
no underscores, no spaces, not too long); anything else goes to typer's coercion."""


class _Unknown(Exception):
    """A value this module does not coerce itself: typer's coercion takes it."""


@dataclass(frozen=True)
class PlainValue(RuntimeParam):
    """typer's runtime coercion of one parameter, for the plain values; the rest goes to typer's own."""

    descriptor: TypeDescriptor

    def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
        try:
            if get_origin(self.annotation) is list:
                (leaf,) = get_args(self.annotation)
                items = value if isinstance(value, (list, tuple)) else [value]
                return [self._leaf(leaf, item, param, ctx) for item in items]
            return self._leaf(self.annotation, value, param, ctx)
        except _Unknown:
            return build_runtime_param(self.descriptor)._coerce_value(value, param=param, ctx=ctx)

    def _leaf(self, annotation: Any, value: Any, param: Any, ctx: Any) -> Any:
        info = self.parameter_info
        if annotation is str and type(value) is str:
            return value
        if annotation is Path and info.path_type in (None, Path) and isinstance(value, (str, Path)) and value != "":
            return Path(coerce_cli_path(value if type(value) is str else str(value), info, path_type=None,
                                        param=param, ctx=ctx))
        if annotation is int and not info.clamp:
            number = value if type(value) is int else (
                int(value) if type(value) is str and _WHOLE.fullmatch(value) else None)
            if number is not None and (info.min is None or number >= info.min) and (
                    info.max is None or number <= info.max):
                return number
        if annotation is bool and type(value) is bool:
            return value
        raise _Unknown


def plain_values(params: list[Any]) -> None:
    """Give each typer parameter of ``params`` whose coercion is not built yet a :class:`PlainValue`."""
    for param in params:
        descriptor = getattr(param, "type_descriptor", None)
        if isinstance(descriptor, TypeDescriptor) and descriptor.file_annotation is None and getattr(
                param, "_runtime_param", False) is None:
            param._runtime_param = PlainValue(parameter_info=descriptor.parameter_info,
                                              annotation=descriptor.annotation, descriptor=descriptor)

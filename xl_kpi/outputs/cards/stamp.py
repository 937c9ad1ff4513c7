"""Stamping one card: every slot's value (inputs, the formulas of :mod:`xl_kpi.engine.formulas` and the cached
results) and the card's zip bytes."""

from __future__ import annotations

import math
import operator
from typing import Any

from xl_kpi.engine import formulas as fx
from xl_kpi.engine.money import CURRENCY_SYMBOLS
from xl_kpi.engine.scales import Scale
from xl_kpi.outputs.cards.cells import (
    Err,
    Fx,
    _num,
    _plain,
    _tail,
)
from xl_kpi.outputs.cards.data import (
    _Card,
    _Context,
)
from xl_kpi.outputs.cards.expand import (
    _ChartSlot,
    _Compiled,
    _Key,
)
from xl_kpi.outputs.cards.fit import RowFit
from xl_kpi.outputs.cards.history import add_history
from xl_kpi.outputs.cards.markup import (
    MONEY_FIELDS,
)
from xl_kpi.outputs.cards.rows import add_rows, has_rows
from xl_kpi.outputs.cards.template import (
    CardTemplate,
)
from xl_kpi.outputs.ooxml import (
    ZipEntry,
    build_zip,
    deflate,
    xml_text,
)

CARD_COMPRESS_LEVEL = 0
"""zlib level for the per-employee parts (the sheet and chart XML): 0 stores them. Deflating ~20 KB per card cost
~30% of rendering it (zlib's set-up dominates at this size) and saved ~14 KB a card; the parts every card shares
stay deflated (compressed once per card shape)."""


# ----------------------------------------------------------------------------------------------
# stamping one card

_L_ID, _L_NAME, _L_UNIT, _L_W, _L_BASE, _L_NORM, _L_FLOOR, _L_CAP, _L_SCALE, _L_GATE, _L_FACT, _L_SCORE, \
    _L_COEF, _L_BONUS, _L_PAYOUT, _L_RATE, _L_THRESHOLD, _L_AMOUNT, _L_MAX_PAYOUT, _L_TIERS = range(20)
_DIV0 = Err("#DIV/0!")


def _isnum(x: Any) -> bool:
    return type(x) is float and x == x


def _pct_text(x: float, t: dict[str, Any]) -> str:
    s = f"{x * 100:.4f}".rstrip("0").rstrip(".") + "%"
    return s.replace(".", t["decimal"])


def _coef_text(x: float, t: dict[str, Any]) -> str:
    return f"{x:g}".replace(".", t["decimal"])


def _money_text(x: float, t: dict[str, Any], currency: str) -> str:
    s = f"{x:,.2f}".replace(",", "\x00").replace(".", t["decimal"]).replace("\x00", t["group"])
    return f"{s} {CURRENCY_SYMBOLS.get(currency.upper(), currency)}"


def _scale_rows(sc: Scale) -> tuple[str, ...]:
    kinds = (("below",) if sc.kind == "steps" else ()) + ("point",) * len(sc.thresholds)
    return kinds + (("cap",) if sc.cap is not None else ())


def _scale_ctxs(sc: Scale, label: str, used_by: list[str], t: dict[str, Any]) -> list[dict[str, Any]]:
    kind = t["steps"] if sc.kind == "steps" else t["linear"]
    if sc.cap is not None:
        kind += ", " + t["capped"].format(_coef_text(sc.cap, t))
    title = {"scale.name": label, "scale.kind": kind, "scale.title": f"{label} — {kind}",
             "scale.used_by": t["used_by"].format(", ".join(used_by))}
    out = [title]
    pts = [_pct_text(x, t) for x in sc.thresholds]
    if sc.kind == "steps":
        out.append({"scale.band": t["below"].format(pts[0]), "scale.threshold": None,
                    "scale.coefficient": float(sc.below)})
        for k, (th, c) in enumerate(sc.points):
            band = t["band"].format(pts[k], pts[k + 1]) if k + 1 < len(pts) else t["above"].format(pts[k])
            out.append({"scale.band": band, "scale.threshold": float(th), "scale.coefficient": float(c)})
    else:
        last = len(pts) - 1
        for k, (th, c) in enumerate(sc.points):
            band = t["at_low" if k == 0 else "at_high" if k == last else "at"].format(pts[k])
            out.append({"scale.band": band, "scale.threshold": float(th), "scale.coefficient": float(c)})
    if sc.cap is not None:
        out.append({"scale.band": t["cap"], "scale.threshold": None, "scale.coefficient": float(sc.cap)})
    return out


_SCALE_CACHE = 4096
"""At most this many (shape, scale, KPIs) entries are kept per worker: a plan of personal KPI names stays bounded."""


class _Stamp:
    """Builds one card's slot values: inputs, formulas and the cached results."""

    def __init__(self, template: CardTemplate, ctx: _Context) -> None:
        self.tpl = template
        self.ctx = ctx
        self._scales: dict[tuple[int, str, tuple[str, ...]], tuple[list[dict[str, Any]], fx.ScaleRefs]] = {}
        """(compiled shape, scale name, KPIs using it) → the scale's slot values and references: the same for
        every card of that shape and position, so built once (read only, shared by those cards)."""
        self._slots: dict[int, list[tuple[int, int, str | None, list[Any] | None, RowFit | None]]] = {}
        """compiled shape → its sheet slots as tuples (:meth:`slots`)."""
        self._refs: dict[int, list[dict[str, str]]] = {}
        """compiled shape → per KPI row, each KPI column's cell reference (``{"fact": "G12", …}``)."""
        self._formulas: dict[tuple[Any, ...], tuple[str, str, str]] = {}
        """(shape, row, scale references, pool reference, the line's plan values) → its score, coefficient and
        bonus formulas: the same on every card of a position, so written once per worker."""

    def key_and_scales(self, card: _Card) -> tuple[_Key, list[tuple[str, Scale, list[str]]]]:
        order: dict[str, tuple[Scale, list[str]]] = {}
        for ln in card.lines:
            name = ln[_L_SCALE] if ln[_L_SCALE] not in (None, "") else "default"
            if name not in order:
                order[name] = (self.ctx.scale(name), [])
            order[name][1].append(str(ln[_L_NAME] if ln[_L_NAME] is not None else ln[_L_ID]))
        if not order:
            order["default"] = (self.ctx.scale("default"), [])
        scales = [(n, sc, used) for n, (sc, used) in order.items()]
        e = card.emp
        m = e["multiplier"]
        p = e["proration"]
        key = _Key(
            max(1, len(card.lines)),
            tuple(_scale_rows(sc) for _, sc, _ in scales),
            not (_isnum(m) and m != 1.0),
            not (_isnum(p) and p != 1.0),
            self.ctx.currency,
            not all(_isnum(e[k]) for k in ("kpi_bonus", "bonus", "total_pay")),
            not (_isnum(e["adjustment"]) and e["adjustment"] != 0.0),
        )
        return key, scales

    def _scale(self, comp: _Compiled, info: dict[str, Any], name: str, sc: Scale, used: list[str]
               ) -> tuple[list[dict[str, Any]], fx.ScaleRefs]:
        """One scale's slot values (title, then a row each) and where its rows are (cell references or literals)."""
        tpl, t = self.tpl, self.ctx.t
        label = t["default_scale"] if name == "default" else t["scale"].format(name)
        cs = _scale_ctxs(sc, label, used, t)
        rows = info["rows"]
        if tpl.scale_start is None:
            return cs, fx.ScaleRefs.of(sc)
        sc_cols = tpl.scale_cols
        at = {k: r for k, r, _ in rows if k in ("below", "cap")}
        return cs, fx.ScaleRefs.cells(sc, sc_cols["threshold"], sc_cols["coefficient"],
                                      [r for k, r, _ in rows if k == "point"], at.get("below"), at.get("cap"))

    def contexts(self, card: _Card, comp: _Compiled, scales: list[tuple[str, Scale, list[str]]]) -> list[Any]:
        tpl, cx, t = self.tpl, self.ctx, self.ctx.t
        emp = card.emp
        kc = tpl.kpi_cols
        fc = comp.field_refs
        ctxs: list[Any] = [None] * comp.ctx_count

        sref: dict[str, fx.ScaleRefs] = {}
        for (name, sc, used), info in zip(scales, comp.scale_rows, strict=True):
            known = self._scales.get(ck := (id(comp), name, tuple(used)))
            if known is None:
                known = self._scale(comp, info, name, sc, used)
                if len(self._scales) < _SCALE_CACHE:
                    self._scales[ck] = known
            cs, sref[name] = known
            ctxs[info["ctx"]] = cs[0]
            for (_kind, _row, ci), c in zip(info["rows"], cs[1:], strict=True):
                ctxs[ci] = c

        pool = emp["bonus_pool"]
        pool_ref = fc.get("bonus_pool") or fx.literal(pool if _isnum(pool) else 0.0)
        weights: list[float] = []
        gates: list[tuple[str, str, float, Any]] = []  # (score ref, gate ref, gate, KPI name)
        rows = comp.kpi_rows
        refs = self._refs.get(id(comp))
        if refs is None:
            refs = self._refs[id(comp)] = [{f: f"{col}{r}" for f, col in kc.items()} for r in rows]
        formulas = self._formulas
        for i in range(len(rows)):
            if i >= len(card.lines):
                ctxs[1 + i] = {}
                continue
            ln = card.lines[i]
            ref = refs[i]
            S = ref["score"]
            floor, cap = ln[_L_FLOOR], ln[_L_CAP]
            name = ln[_L_SCALE] if ln[_L_SCALE] not in (None, "") else "default"
            fkey = (id(comp), i, sref[name], pool_ref, _plan_key(ln))
            known_f = formulas.get(fkey)
            if known_f is None:
                known_f = self._line_formulas(ln, ref, sref[name], pool_ref)
                if len(formulas) < _FORMULA_CACHE:
                    formulas[fkey] = known_f
            score_f, coef_f, bonus_f = known_f

            fact, score, coef, bon = ln[_L_FACT], ln[_L_SCORE], ln[_L_COEF], ln[_L_BONUS]
            if not _isnum(fact):
                sv = cv = bv = ""  # no fact: the chain stays empty and SUM skips the line
            elif not _isnum(score):
                sv, cv, bv = _DIV0, "", ""  # norm = base: #DIV/0! in the score, empty after it
            else:
                sv = score
                cv = coef if _isnum(coef) else ""
                bv = bon if _isnum(bon) else ""
            if _isnum(ln[_L_W]):
                weights.append(ln[_L_W])
            gate = ln[_L_GATE]
            if _isnum(gate):
                gates.append((S, ref.get("gate") or fx.literal(gate), gate, ln[_L_NAME]))
            ctxs[1 + i] = {
                "kpi.no": i + 1, "kpi.id": ln[_L_ID], "kpi.name": ln[_L_NAME], "kpi.unit": ln[_L_UNIT],
                "kpi.weight": ln[_L_W], "kpi.base": ln[_L_BASE], "kpi.norm": ln[_L_NORM], "kpi.fact": fact,
                "kpi.floor": floor, "kpi.cap": cap, "kpi.gate": gate, "kpi.scale": name, "kpi.target": 1.0,
                "kpi.score": Fx(score_f, sv), "kpi.bonus": Fx(bonus_f, bv),
                # a line paid by another kind (fixed, share, …) has no coefficient: an empty cell, not a misleading one
                "kpi.coefficient": Fx(coef_f, cv) if _payout_kind(ln) == "coefficient" else "",
            }

        # totals: formulas from the engine, cached values from results (none where results have none)
        first, last = rows[0], rows[-1]
        bc, wc = kc["bonus"], kc.get("weight")
        sum_bonus = fx.kpi_bonus_formula(f"{bc}{first}:{bc}{last}")
        mult = emp["multiplier"] if _isnum(emp["multiplier"]) else 1.0
        pror = emp["proration"] if _isnum(emp["proration"]) else 1.0
        bonus_f = fx.period_bonus_formula(fc.get("kpi_bonus") or sum_bonus, fc.get("multiplier") or fx.literal(mult),
                                          fc.get("proration") or fx.literal(pror), cx.digits,
                                          fx.gate_condition((s, g) for s, g, _, _ in gates))
        salary = emp["salary"] if _isnum(emp["salary"]) else 0.0
        adj = emp["adjustment"] if _isnum(emp["adjustment"]) else 0.0
        adj_ref = fc.get("adjustment") or (fx.literal(adj) if adj != 0.0 else None)
        total_f = fx.total_pay_formula(fc.get("salary") or fx.literal(salary), fc.get("bonus") or bonus_f, cx.digits,
                                       adj_ref)
        wsum = math.fsum(weights)
        weight_f = fx.sum_formula(f"{wc}{first}:{wc}{last}") if wc else fx.literal(wsum)

        gate_note = ""
        if gates:
            gate_note = " ".join(t["gate"].format(name, _pct_text(g, t)) for _, _, g, name in gates)
            if emp["gated"]:
                gate_note += " " + t["gated"]
        ctxs[0] = {
            "company": cx.company, "period": cx.period, "period_name": cx.period_name, "currency": cx.currency,
            "employee_id": emp["employee_id"], "name": emp["name"], "position": emp["position"],
            "department": emp["department"], "manager": emp["manager"], "email": emp["email"],
            "status": emp["status"], "reason": emp["reason"], "gate_note": gate_note,
            "salary": emp["salary"], "bonus_pool": pool, "multiplier": mult, "proration": pror,
            "weight_total": Fx(weight_f, wsum), "kpi_bonus": Fx(sum_bonus, emp["kpi_bonus"]),
            "bonus": Fx(bonus_f, emp["bonus"]), "total_pay": Fx(total_f, emp["total_pay"]),
            "adjustment": adj, "adjustment_reason": emp["adjustment_reason"] or "",
        }
        return ctxs

    def slots(self, comp: _Compiled) -> list[tuple[int, int, str | None, list[Any] | None, RowFit | None]]:
        """A shape's sheet slots as plain tuples, made once: (position, context, field, text pieces, row fit)."""
        known = self._slots.get(id(comp))
        if known is None:
            known = self._slots[id(comp)] = [
                (pos, 0, None, None, slot) if type(slot) is RowFit else (pos, slot.ctx, slot.field, slot.pieces, None)
                for pos, slot in comp.sheet_slots]
        return known

    def _line_formulas(self, ln: tuple[Any, ...], ref: dict[str, str], scale: fx.ScaleRefs, pool_ref: str
                       ) -> tuple[str, str, str]:
        """A KPI line's score, coefficient and bonus formulas: cells of the card where it has them, else the
        plan's numbers as literals."""
        cx = self.ctx
        F, S, C = ref["fact"], ref["score"], ref["coefficient"]
        floor, cap = ln[_L_FLOOR], ln[_L_CAP]
        score_f = fx.score_formula(
            F, ref.get("base") or fx.literal(ln[_L_BASE]), ref.get("norm") or fx.literal(ln[_L_NORM]),
            (ref.get("floor") or fx.literal(floor)) if _isnum(floor) else None,
            (ref.get("cap") or fx.literal(cap)) if _isnum(cap) else None)
        coef_f = fx.coefficient_formula(S, scale)
        bonus_f = _bonus_formula(ln, fx.PayoutRefs(
            pool_ref, ref.get("weight") or fx.literal(ln[_L_W]), C, S, F,
            ref.get("base") or fx.literal(ln[_L_BASE]), *(fx.literal(ln[i]) if _isnum(ln[i]) else None
                                                          for i in _L_PARAMS)), cx.digits, cx.tiers)
        return score_f, coef_f, bonus_f

    def text(self, pieces: list[Any], ctxs: list[Any]) -> str:
        out = []
        t = self.ctx.t
        for p in pieces:
            if isinstance(p, str):
                out.append(p)
                continue
            ci, name = p
            v = _plain((ctxs[ci] or {}).get(name))
            if v is None or (type(v) is float and v != v):
                continue
            if type(v) is float:
                if name in MONEY_FIELDS:
                    out.append(_money_text(v, t, self.ctx.currency))
                elif name in ("proration", "kpi.score", "kpi.weight", "weight_total", "scale.threshold"):
                    out.append(_pct_text(v, t))
                else:
                    out.append(_coef_text(v, t))
            else:
                out.append(str(v))
        return "".join(out)


_TEXT: dict[str, str] = {}
"""Cell texts already escaped for the sheet XML (per process): KPI names, units, labels, departments repeat."""
_TEXT_CACHE = 50_000
"""Beyond this many texts (people's names are each a new one) the memory is emptied and starts again."""


def _render(template: CardTemplate, stamp: _Stamp, card: _Card) -> bytes:
    key, scales = stamp.key_and_scales(card)
    comp = template.compiled(key)
    ctxs = stamp.contexts(card, comp, scales)
    values: list[Any] = []
    keep = values.append
    buf = list(comp.sheet_parts)
    fits: list[tuple[int, RowFit]] = []
    for pos, ci, name, pieces, fit in stamp.slots(comp):
        if fit is not None:  # a row's height: set once its cells' texts are known
            keep(None)
            fits.append((pos, fit))
            continue
        if name is not None:
            c = ctxs[ci]
            v = c.get(name) if c else None
        else:
            v = stamp.text(pieces, ctxs)
        keep(v)
        tv = type(v)
        if tv is float and v - v == 0.0:  # a finite number, the commonest value: _tail's text, inline
            r = repr(v)
            buf[pos] = f"><v>{r[:-2] if r.endswith('.0') else r}</v></c>"
        elif tv is str and v:  # text, the next commonest: _tail's, its escaped form remembered
            x = _TEXT.get(v)
            if x is None:
                if len(_TEXT) > _TEXT_CACHE:
                    _TEXT.clear()
                x = _TEXT[v] = xml_text(v)
            buf[pos] = f' t="inlineStr"><is><t xml:space="preserve">{x}</t></is></c>'
        else:
            buf[pos] = _tail(v)
    for pos, fit in fits:
        buf[pos] = fit.render(values)
    dynamic: dict[str, bytes] = {template.sheet_part: "".join(buf).encode("utf-8")}
    for part, (cparts, cslots) in comp.charts.items():
        cb = list(cparts)
        for pos, cs in cslots:
            vals = [_plain(values[ref]) if kind == "s" else ref for kind, ref in cs.cells]
            cb[pos] = _chart_cache(cs, vals)
        dynamic[part] = "".join(cb).encode("utf-8")
    entries: list[ZipEntry] = []
    locals_: list[bytes] = []
    for e, loc in zip(comp.entries, comp.locals_, strict=True):
        if isinstance(e, str):
            e = deflate(e, dynamic[e], CARD_COMPRESS_LEVEL)
            loc = e.local
        entries.append(e)
        locals_.append(loc)  # type: ignore[arg-type]
    if stamp.ctx.history is not None:
        entries, locals_ = add_history(template, comp, card, stamp.ctx, entries, locals_, CARD_COMPRESS_LEVEL)
    if stamp.ctx.rows and has_rows(stamp.ctx, card):  # after the history sheet: it patches what that one did
        entries, locals_ = add_rows(template, comp, card, stamp.ctx, entries, locals_, CARD_COMPRESS_LEVEL)
    return build_zip(entries, locals_)


_NUM_CACHE_TAGS: dict[tuple[str, str, int], tuple[str, list[str], str, str]] = {}
"""(prefix, number format, points) → a number cache's opening, each point's opening, a point's closing and the
cache's closing tags (the same on every card)."""


def _num_cache_tags(p: str, format_code: str, n: int) -> tuple[str, list[str], str, str]:
    key = (p, format_code, n)
    tags = _NUM_CACHE_TAGS.get(key)
    if tags is None:
        if len(_NUM_CACHE_TAGS) > 1000:  # pragma: no cover (a handful of charts per template)
            _NUM_CACHE_TAGS.clear()
        tags = _NUM_CACHE_TAGS[key] = (
            f"<{p}numCache><{p}formatCode>{format_code}</{p}formatCode><{p}ptCount val=\"{n}\"/>",
            [f'<{p}pt idx="{i}"><{p}v>' for i in range(n)], f"</{p}v></{p}pt>", f"</{p}numCache>")
    return tags


def _chart_cache(cs: _ChartSlot, vals: list[Any]) -> str:
    p = cs.prefix
    n = len(vals)
    if cs.numeric:
        head, opening, closing, tail = _num_cache_tags(p, cs.format_code, n)
        out = [head]
        for i, v in enumerate(vals):
            tv = type(v)
            if (tv is float or tv is int) and v == v:
                r = repr(float(v))
                out.append(f"{opening[i]}{r[:-2] if r.endswith('.0') else r}{closing}")
        out.append(tail)
        return "".join(out)
    pts = "".join(
        f'<{p}pt idx="{i}"><{p}v>{xml_text(v if type(v) is str else _num(float(v)))}</{p}v></{p}pt>'
        for i, v in enumerate(vals) if v is not None and v != "" and not (type(v) is float and v != v)
    )
    return f'<{p}strCache><{p}ptCount val="{n}"/>{pts}</{p}strCache>'


_L_PARAMS = (_L_RATE, _L_THRESHOLD, _L_AMOUNT, _L_MAX_PAYOUT)
_L_PLAN = (_L_W, _L_BASE, _L_NORM, _L_FLOOR, _L_CAP, _L_PAYOUT, _L_TIERS, *_L_PARAMS)
"""What of a line its formulas are written from (besides the shape, row, scale and pool): the plan's values."""
_plan_values = operator.itemgetter(*_L_PLAN)
_NAN = object()


def _plan_key(ln: tuple[Any, ...]) -> tuple[Any, ...]:
    """A line's plan values as a dictionary key that tells apart what its formulas tell apart: a NaN (never equal
    to itself) becomes one marker, and a zero carries its sign (0.0 == -0.0, but a formula writes -0 as (-0))."""
    out = []
    for v in _plan_values(ln):
        if type(v) is float:
            if v != v:
                v = _NAN
            elif v == 0.0:
                v = (0.0, math.copysign(1.0, v))
        out.append(v)
    return tuple(out)


_FORMULA_CACHE = 20_000
"""At most this many lines' formulas kept per worker (personal plans with values of their own stay bounded)."""


def _payout_kind(ln: tuple[Any, ...]) -> str:
    """The line's payout kind; an empty cell is today's coefficient rule."""
    return ln[_L_PAYOUT] if ln[_L_PAYOUT] not in (None, "") else "coefficient"


def _bonus_formula(ln: tuple[Any, ...], refs: fx.PayoutRefs, digits: int, tiers: dict[str, Any]) -> str:
    """The line's bonus formula by its payout kind (issue 15), its parameters written as numbers; a line the
    results could not pay (an unknown kind or tier set, a missing rate) keeps the coefficient rule's formula."""
    kind = _payout_kind(ln)
    tier = tiers.get(ln[_L_TIERS]) if ln[_L_TIERS] not in (None, "") else None
    try:
        return fx.payout_formula(kind, refs, digits, tier)
    except ValueError:
        return fx.line_bonus_formula(refs.pool, refs.weight, refs.coefficient, digits)

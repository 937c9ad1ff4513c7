"""Raw data as CRMs export it, end to end through ``xl-kpi generate --period 2026-Q4`` (issue 11, "Done
when"): a Bitrix24 deals CSV (cp1251, ``;``, every value quoted, "150 000,00", dd.mm.yyyy hh:mm:ss,
multi-line comments, people named "Анна Петрова"), an amoCRM leads workbook (logins), a helpdesk tickets
export (CRM user ids), USD deals converted with the Rates sheet, and a head paid on the team's revenue;
no hand-made id column anywhere.

The exports are generated here from a seeded random source; the expected facts and bonuses are computed
by hand in this file (Decimal arithmetic over the generated rows, the step scale of docs/domain.md §3), never
with xl_kpi.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import random
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest

from tests import _plan_helpers as ph
from xl_kpi.cli import app
from xl_kpi.outputs.results_files import load_results

Q4 = (dt.datetime(2026, 10, 1), dt.datetime(2026, 12, 31, 23, 59, 59))
WON, LOST, OPEN = "Сделка успешна", "Сделка провалена", "В работе"
USD_RATES = [(dt.datetime(2026, 10, 1), Decimal("92.50")), (dt.datetime(2026, 12, 1), Decimal("95.10"))]

# employee_id, name, position, manager, aliases (as the CRMs write people), pool
STAFF = [
    ("1001", "Петрова Анна Сергеевна", "Head of sales", None, "Анна Петрова; a.petrova; 1187", "31234,57"),
    ("1002", "Белова Полина Игоревна", "Account manager", "1001", "Полина Б.; p.belova; 1190", "20333,33"),
    ("1003", "Кузнецов Олег Петрович", "Account manager", "1001", "Олег Кузнецов; o.kuznetsov; 1201", "20111,11"),
    ("1004", "Смирнова Ольга Юрьевна", "Support", None, "Ольга Смирнова; o.smirnova; 1210", "10555,55"),
]
BITRIX_NAMES = {"1001": ["Анна Петрова"], "1002": ["Полина Б."], "1003": ["Олег Кузнецов", "ОЛЕГ КУЗНЕЦОВ "]}
AMO_LOGINS = {"1002": ["p.belova", "P.Belova"], "1003": ["o.kuznetsov"]}
HELPDESK_IDS = {"1004": ["1210"]}

PLAN_ROWS = [  # position, kpi_id, weight, base, norm
    ("Head of sales", "team_revenue", 1.0, 0, 1_500_000),
    ("Account manager", "revenue", 0.6, 100_000, 700_000),
    ("Account manager", "leads", 0.4, 1, 3.5),
    ("Support", "tickets", 0.5, 2, 9),
    ("Support", "hours", 0.5, 40, 26),
]
REVENUE = 'sum bitrix.Сумма where "Стадия сделки" = "Сделка успешна" by Ответственный dated "Дата закрытия"'
SOURCES = {
    "revenue": REVENUE,
    "team_revenue": REVENUE + " for team",
    "leads": 'count amo where Статус = "Успешно реализовано" by Ответственный dated "Дата закрытия"',
    "tickets": "count helpdesk where Статус = Решён by Исполнитель dated Создан",
    "hours": "mean hours helpdesk.Создан to Решён where Статус = Решён by Исполнитель dated Создан",
}


@dataclass
class Deal:
    owner: str | None  # employee_id, or None for the portal admin
    who: str
    stage: str
    kopecks: int
    currency: str
    closed: dt.datetime


def _bitrix_deals(rng: random.Random) -> list[Deal]:
    deals = []
    for eid, names in BITRIX_NAMES.items():
        for _ in range(14):
            closed = dt.datetime(2026, rng.choice([9, 10, 11, 12]), rng.randint(1, 28), rng.randint(0, 23),
                                 rng.randint(0, 59), rng.randint(0, 59))
            deals.append(Deal(eid, rng.choice(names), rng.choice([WON, WON, WON, LOST, OPEN]),
                              rng.randint(1_000_000, 25_000_000), "RUB", closed))
    deals += [  # the edges: the last second of the quarter, the last second before it, USD deals on two rates
        Deal("1002", "Полина Б.", WON, 15_000_000, "RUB", dt.datetime(2026, 12, 31, 23, 59, 59)),
        Deal("1002", "Полина Б.", WON, 99_900_000, "RUB", dt.datetime(2026, 9, 30, 23, 59, 59)),
        Deal("1003", "Олег Кузнецов", WON, 120_050, "USD", dt.datetime(2026, 10, 15, 12, 0, 0)),
        Deal("1003", "Олег Кузнецов", WON, 99_999, "USD", dt.datetime(2026, 12, 2, 9, 30, 0)),
        Deal("1001", "Анна Петрова", WON, 50_000, "USD", dt.datetime(2026, 11, 30, 18, 0, 0)),
        Deal(None, "Портал Администратор", WON, 700_000_000, "RUB", dt.datetime(2026, 11, 3, 10, 0, 0)),
    ]
    return deals


def _money_text(kopecks: int, rng: random.Random) -> str:
    rub, kop = divmod(kopecks, 100)
    groups = f"{rub:,}".replace(",", rng.choice([" ", "\u00a0"]))
    return f"{groups},{kop:02d}"


def write_bitrix(path: Path, deals: list[Deal], rng: random.Random) -> Path:
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=";", quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    w.writerow(["ID", "Название сделки", "Стадия сделки", "Сумма", "Валюта", "Ответственный", "Дата создания",
                "Дата закрытия", "Комментарий"])
    for i, d in enumerate(deals, 1):
        comment = rng.choice(["", "Клиент просил счёт;\nперезвонить в понедельник", 'Договор "Ромашка"\nподписан'])
        w.writerow([str(4000 + i), f"Сделка №{i}", d.stage, _money_text(d.kopecks, rng),
                    "руб." if d.currency == "RUB" and i % 3 == 0 else d.currency, d.who,
                    (d.closed - dt.timedelta(days=20)).strftime("%d.%m.%Y %H:%M:%S"),
                    d.closed.strftime("%d.%m.%Y %H:%M:%S"), comment])
    path.write_bytes(buf.getvalue().encode("cp1251"))
    return path


def write_amo(path: Path, rng: random.Random) -> list[tuple[str, bool]]:
    """amoCRM leads: (employee_id, counts) per row."""
    rows = [["ID", "Название", "Бюджет", "Статус", "Ответственный", "Дата создания", "Дата закрытия"]]
    out = []
    for eid, logins in AMO_LOGINS.items():
        for i in range(9):
            status = rng.choice(["Успешно реализовано", "Успешно реализовано", "Закрыто и не реализовано"])
            closed = dt.datetime(2026, rng.choice([9, 10, 11, 12]), rng.randint(1, 28), 15, 30)
            rows.append([f"{eid}-{i}", f"Лид {i}", rng.randint(1, 90) * 1000, status, rng.choice(logins),
                         closed - dt.timedelta(days=3), closed])
            out.append((eid, status == "Успешно реализовано" and Q4[0] <= closed <= Q4[1]))
    ph.write_workbook(path, {"Сделки": rows})
    return out


def write_helpdesk(path: Path, rng: random.Random) -> list[tuple[bool, float]]:
    """Tickets of 1004: (counts, hours to resolution) per row."""
    rows = [["Номер", "Тема", "Статус", "Исполнитель", "Создан", "Решён"]]
    out = []
    for i in range(16):
        created = dt.datetime(2026, rng.choice([9, 10, 11, 12]), rng.randint(1, 28), rng.randint(8, 18), 0)
        resolved = rng.random() < 0.8
        done = created + dt.timedelta(hours=rng.randint(1, 60), minutes=rng.choice([0, 15, 30])) if resolved else None
        rows.append([f"T-{i}", "Не работает вход", "Решён" if resolved else "Открыт", "1210",
                     created.strftime("%Y-%m-%d %H:%M"), done.strftime("%Y-%m-%d %H:%M") if done else ""])
        hours = (done - created).total_seconds() / 3600 if done else float("nan")
        out.append((resolved and Q4[0] <= created <= Q4[1], hours))
    ph.write_csv(path, rows, bom=True)
    return out


def write_plan(path: Path) -> Path:
    employees = [["Табельный номер", "ФИО", "Должность", "Отдел", "Руководитель", "Почта", "Оклад", "Премия",
                  "Псевдонимы"]]
    employees += [[e, n, p, "Продажи", m, f"{e}@example.ru", 80_000, pool, a] for e, n, p, m, a, pool in STAFF]
    return ph.write_workbook(path, {
        "Сотрудники": employees,
        "Показатели": [["Код", "Название", "Ед. изм.", "Источник"]] + [[k, k, "", s] for k, s in SOURCES.items()],
        "План": [["Должность", "Код KPI", "Вес", "База", "Норма"]] + [list(r) for r in PLAN_ROWS],
        "Источники": [["Таблица", "Путь", "Кодировка"], ["bitrix", "exports/DEAL_*.csv", "cp1251"]],
        "Курсы": [["Валюта", "Курс", "Действует с"]] + [["$", str(r).replace(".", ","), d.strftime("%d.%m.%Y")]
                                                       for d, r in USD_RATES],
        "Настройки": [["Параметр", "Значение"], ["Валюта", "руб"], ["Компания", "Ромашка"]],
    })


# ----------------------------------------------------------------------------- the hand computation


def usd_rate(day: dt.datetime) -> Decimal:
    return [r for d, r in USD_RATES if d <= day][-1]


def coefficient(score: Decimal) -> Decimal:
    """docs/domain.md §3: below 70% → 0, [70%, 100%) → 0.9, [100%, 110%) → 1.0, from 110% → 1.1."""
    for threshold in (Decimal("0.7"), Decimal("1.0"), Decimal("1.1")):
        assert abs(score - threshold) > Decimal("1e-9"), "too close to a threshold to test"
    return Decimal("0") if score < Decimal("0.7") else Decimal("0.9") if score < 1 else Decimal(
        "1.0") if score < Decimal("1.1") else Decimal("1.1")


def kopeck(x: Decimal) -> Decimal:
    return x.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


@pytest.fixture(scope="module")
def crm_run(tmp_path_factory, runner):
    tmp = tmp_path_factory.mktemp("crm")
    rng = random.Random(20261202)
    (tmp / "exports").mkdir()
    deals = _bitrix_deals(rng)
    write_bitrix(tmp / "exports" / "DEAL_20261202_9f3c1a.csv", deals, rng)
    leads = write_amo(tmp / "amocrm_leads_export.xlsx", rng)
    tickets = write_helpdesk(tmp / "helpdesk.csv", rng)
    plan = write_plan(tmp / "plan.xlsx")
    out = tmp / "out"
    result = runner.invoke(app, ["generate", "--plan", str(plan), "--data", f"amo={tmp / 'amocrm_leads_export.xlsx'}",
                                 "--data", str(tmp / "helpdesk.csv"), "--out", str(out), "--period", "2026-Q4"])
    validate = runner.invoke(app, ["validate", "--plan", str(plan), "--data",
                                   f"amo={tmp / 'amocrm_leads_export.xlsx'}", "--data", str(tmp / "helpdesk.csv"),
                                   "--period", "2026-Q4"])
    return deals, leads, tickets, out, result, validate


def expected_facts(deals, leads, tickets) -> dict[tuple[str, str], Decimal]:
    own: dict[str, Decimal] = {e: Decimal(0) for e, *_ in STAFF}
    for d in deals:
        if d.owner is None or d.stage != WON or not Q4[0] <= d.closed <= Q4[1]:
            continue
        amount = Decimal(d.kopecks) / 100
        own[d.owner] += amount * usd_rate(d.closed) if d.currency == "USD" else amount
    facts = {("1002", "revenue"): own["1002"], ("1003", "revenue"): own["1003"],
             ("1001", "team_revenue"): own["1001"] + own["1002"] + own["1003"]}
    for eid in AMO_LOGINS:
        facts[(eid, "leads")] = Decimal(sum(1 for e, counts in leads if e == eid and counts))
    counted = [h for counts, h in tickets if counts]
    facts[("1004", "tickets")] = Decimal(len(counted))
    facts[("1004", "hours")] = Decimal(sum(Decimal(str(h)) for h in counted)) / len(counted)
    return facts


def test_crm_exports_give_the_cards_without_a_hand_made_id_column(crm_run):
    deals, leads, tickets, out, result, validate = crm_run
    assert result.exit_code == 0, result.output
    assert validate.exit_code == 0, validate.output
    assert "Портал Администратор" in validate.output and "(1 row)" in validate.output
    results = load_results(out)
    lines = results.lines.set_index(["employee_id", "kpi_id"])
    want = expected_facts(deals, leads, tickets)
    assert set(lines.index) == set(want)
    for key, fact in want.items():
        assert abs(Decimal(repr(float(lines.loc[key, "fact"]))) - fact) < Decimal("0.005"), key
    plan = {(p, k): (Decimal(str(w)), Decimal(str(b)), Decimal(str(n))) for p, k, w, b, n in PLAN_ROWS}
    position = {e: p for e, _, p, *_ in STAFF}
    pools = {e: Decimal(pool.replace(",", ".")) for e, *_, pool in STAFF}
    bonus: dict[str, Decimal] = {}
    for (eid, kpi), fact in want.items():
        w, b, n = plan[(position[eid], kpi)]
        # engine/payout.py: each line ROUND(pool × weight × coefficient, 2), the bonus the sum of the lines
        bonus[eid] = bonus.get(eid, Decimal(0)) + kopeck(pools[eid] * w * coefficient((fact - b) / (n - b)))
    got = results.employees.set_index("employee_id")["bonus"]
    for eid, value in bonus.items():
        assert Decimal(repr(float(got[eid]))) == kopeck(value), eid
    assert len({coefficient((f - plan[(position[e], k)][1]) / (plan[(position[e], k)][2] - plan[(position[e], k)][1]))
                for (e, k), f in want.items()}) >= 3  # the fixture reaches several bands of the scale


def test_the_usd_deals_and_the_team_are_in_the_facts(crm_run):
    deals, leads, tickets, out, *_ = crm_run
    lines = load_results(out).lines.set_index(["employee_id", "kpi_id"])["fact"]
    usd = sum(Decimal(d.kopecks) / 100 * usd_rate(d.closed) for d in deals if d.owner == "1003" and d.currency == "USD")
    rub_only = expected_facts([d for d in deals if d.currency != "USD"], leads, tickets)
    got = Decimal(repr(float(lines[("1003", "revenue")])))
    assert abs(got - rub_only[("1003", "revenue")] - usd) < Decimal("0.005")
    assert lines[("1001", "team_revenue")] > lines[("1002", "revenue")] + lines[("1003", "revenue")]


def test_manifest_records_which_file_each_table_came_from(crm_run):
    *_, out, _, _ = crm_run
    audit = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    tables = audit["tables"]
    assert Path(tables["bitrix"]["file"]).name == "DEAL_20261202_9f3c1a.csv"
    assert Path(tables["amo"]["file"]).name == "amocrm_leads_export.xlsx"
    assert Path(tables["helpdesk"]["file"]).name == "helpdesk.csv"
    assert all(len(t["sha256"]) == 64 for t in tables.values())
    assert any(d.get("table") == "amo" for d in audit["data"])


def test_verify_recomputes_a_run_with_bound_tables(crm_run, runner):
    *_, out, _, _ = crm_run
    result = runner.invoke(app, ["verify", str(out)])
    assert result.exit_code == 0, result.output


# ------------------------------------------------------------------ the rows behind the facts (issue 13 §1)


def _rows_sheet(path: Path):
    import openpyxl

    from xl_kpi.outputs.cards.rows import TEXTS

    wb = openpyxl.load_workbook(path)
    names = [n for n in wb.sheetnames if n in {t["sheet"] for t in TEXTS.values()}]
    return wb[names[0]] if names else None


def _card(out: Path, eid: str) -> Path:
    return next((out / "cards").rglob(f"{eid} *.xlsx"))


def test_the_heads_card_lists_the_teams_deals_with_names_and_the_usd_rows_converted(crm_run):
    deals, _, _, out, *_ = crm_run
    ws = _rows_sheet(_card(out, "1001"))
    rows = [[c.value for c in r] for r in ws.iter_rows()]
    head = next(i for i, r in enumerate(rows) if r[0] == "Row in file")
    assert rows[head][2] == "Employee (team)" and "Сумма" in rows[head] and "Валюта" in rows[head]
    listed = [r for r in rows[head + 1:] if isinstance(r[0], int)]
    won = [d for d in deals if d.owner and d.stage == WON and Q4[0] <= d.closed <= Q4[1]]
    assert len(listed) == len(won)
    names = {e: n for e, n, *_ in STAFF}
    assert sorted({r[2] for r in listed}) == sorted({names[d.owner] for d in won})  # the team, by name
    usd = [r for r in listed if r[rows[head].index("Валюта")] == "USD"]
    assert len(usd) == 3
    for r in usd:  # the converted amount counts, the file's own cell is shown
        d = next(d for d in won if d.currency == "USD" and d.closed.strftime("%d.%m.%Y %H:%M") in str(r[4]))
        assert abs(Decimal(repr(r[1])) - Decimal(d.kopecks) / 100 * usd_rate(d.closed)) < Decimal("0.005")
    total = next(r for r in rows if r[0] == "Total")
    assert total[1].startswith("=SUM(B") and total[3].startswith("=Card!")


@pytest.mark.libreoffice
def test_libreoffice_recalculates_the_rows_totals_of_every_crm_card(crm_run, tmp_path):
    import shutil

    from tests import lo

    *_, out, _, _ = crm_run
    lo.require_soffice()
    flat = tmp_path / "in"
    flat.mkdir()
    inputs = [Path(shutil.copy(_card(out, e), flat / f"{e}.xlsx")) for e, *_ in STAFF]
    checked = 0
    for src, rec in zip(inputs, lo.recalc(inputs, tmp_path / "lo"), strict=True):
        bad = lo.formula_cells_vs_cached(src, rec)
        assert not bad, f"{src.name}: {bad[:5]}"
        sheet = _rows_sheet(src).title
        import openpyxl

        values = openpyxl.load_workbook(rec, data_only=True)[sheet]
        for r in _rows_sheet(src).iter_rows():
            if r[0].value == "Total":
                got = values.cell(r[0].row, 2).value
                fact = values.cell(r[0].row, 4).value
                assert isinstance(got, float | int) and abs(got - fact) <= 1e-6 * max(1, abs(fact)), src.name
                checked += 1
    assert checked == 7  # every derived line of the four cards: revenue and leads ×2, team revenue, tickets, hours


def _plant(card: Path, old: str, new: str) -> None:
    import zipfile

    data = {}
    with zipfile.ZipFile(card) as zf:
        for n in zf.namelist():
            data[n] = zf.read(n)
    part = next(n for n in data if n.startswith("xl/worksheets/xl_kpi_rows"))
    xml = data[part].decode("utf-8")
    i = xml.index(old, xml.index("<row r=\"9\""))  # a listed row, not the card's title
    data[part] = (xml[:i] + new + xml[i + len(old):]).encode("utf-8")
    with zipfile.ZipFile(card, "w", zipfile.ZIP_DEFLATED) as zf:
        for n, b in data.items():
            zf.writestr(n, b)


def test_isolation_allows_the_heads_team_rows_and_refuses_a_planted_foreign_row(crm_run, tmp_path):
    import shutil

    from xl_kpi.delivery.isolation import check

    *_, out, _, _ = crm_run
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    assert check(copy) == []  # the head's card names the team's people: allowed, they are the head's team
    names = {e: n for e, n, *_ in STAFF}
    _plant(_card(copy, "1001"), names["1002"], names["1004"])  # support's row in the head's team section
    _plant(_card(copy, "1002"), names["1002"], names["1003"])  # a colleague's row on a manager's own card
    leaks = check(copy)
    import re

    rows = sorted((re.search(r"/(\d{4}) ", lk.file).group(1), lk.employee_id) for lk in leaks if lk.kind == "row")
    assert rows == [("1001", "1004"), ("1002", "1003")], leaks

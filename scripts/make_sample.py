"""Generate the sample company in workbooks/sample/ (deterministic: the same bytes on every run).

ООО «Сервис Плюс», a customer-service company, period 2026-10:

* plan.xlsx      Employees (44 people, 3 departments), KPIs (with raw-data sources), Plan (four
                 position plans and one personal plan, a gate), Scales (the default step scale and a
                 linear one), Settings;
* deals.csv      CRM deals, as Russian Excel saves CSV: cp1251, ';' separator, decimal commas,
                 non-breaking spaces between thousands, CRLF line ends;
* requests.xlsx  client requests (Russian headers, Excel dates);
* surveys.csv    client survey answers 0–10 (UTF-8 with BOM, ',' separator);
* facts.csv      quality-control scores, a KPI without a source (plain facts file).

Run:  python scripts/make_sample.py [--out DIR]
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import random
import zipfile
from dataclasses import dataclass
from pathlib import Path

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.writer.excel import ExcelWriter

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "workbooks" / "sample"
SEED = 2026_10
FIXED_TIME = dt.datetime(2026, 11, 2, 9, 0, 0)
PERIOD_START = dt.date(2026, 10, 1)
COMPANY = "ООО «Сервис Плюс»"
DOMAIN = "servis-plus.ru"

AM = "Менеджер по работе с клиентами"
KAM = "Менеджер по ключевым клиентам"
TL = "Руководитель группы поддержки"
SPEC = "Специалист поддержки"
SALES, KEY, SUPPORT = "Отдел продаж", "Отдел ключевых клиентов", "Служба поддержки"

SURNAMES = [
    "Иванов", "Смирнов", "Кузнецов", "Попов", "Васильев", "Петров", "Михайлов", "Новиков", "Фёдоров", "Морозов",
    "Волков", "Алексеев", "Лебедев", "Семёнов", "Егоров", "Павлов", "Козлов", "Степанов", "Николаев", "Захаров",
    "Зайцев", "Соловьёв", "Борисов", "Яковлев", "Григорьев", "Романов", "Воробьёв", "Сергеев", "Кузьмин", "Фролов",
    "Александров", "Дмитриев", "Королёв", "Гусев", "Киселёв", "Ильин", "Максимов", "Поляков", "Сорокин",
    "Виноградов", "Ковалёв", "Медведев", "Антонов", "Тарасов", "Жуков", "Баранов", "Филиппов", "Комаров",
]
MALE = ["Александр", "Дмитрий", "Максим", "Сергей", "Андрей", "Алексей", "Артём", "Илья", "Кирилл", "Михаил",
        "Никита", "Иван", "Егор", "Роман", "Павел", "Владимир", "Денис", "Евгений", "Олег", "Игорь"]
FEMALE = ["Анна", "Мария", "Елена", "Ольга", "Наталья", "Екатерина", "Татьяна", "Ирина", "Светлана", "Юлия",
          "Анастасия", "Дарья", "Марина", "Ксения", "Виктория", "Полина"]
PATRONYMICS = [("Александрович", "Александровна"), ("Дмитриевич", "Дмитриевна"), ("Сергеевич", "Сергеевна"),
               ("Андреевич", "Андреевна"), ("Алексеевич", "Алексеевна"), ("Михайлович", "Михайловна"),
               ("Иванович", "Ивановна"), ("Петрович", "Петровна"), ("Николаевич", "Николаевна"),
               ("Владимирович", "Владимировна"), ("Викторович", "Викторовна"), ("Юрьевич", "Юрьевна"),
               ("Олегович", "Олеговна"), ("Евгеньевич", "Евгеньевна"), ("Игоревич", "Игоревна")]
TRANSLIT = dict(zip("абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
                    ["a", "b", "v", "g", "d", "e", "e", "zh", "z", "i", "y", "k", "l", "m", "n", "o", "p", "r", "s",
                     "t", "u", "f", "kh", "ts", "ch", "sh", "shch", "", "y", "", "e", "yu", "ya"], strict=True))
HEADS = {SALES: "Соколова Анна Викторовна", KEY: "Орлов Дмитрий Сергеевич", SUPPORT: "Белова Екатерина Андреевна"}


@dataclass
class Person:
    employee_id: int
    name: str
    surname: str
    first: str
    position: str
    department: str
    manager: str
    salary: int
    pool: int
    multiplier: float | None = None
    hired: dt.date | None = None
    left: dt.date | None = None
    team_lead: int | None = None
    skill: float = 1.0


def translit(text: str) -> str:
    return "".join(TRANSLIT.get(ch, ch) for ch in text.lower())


def make_people(rng: random.Random) -> list[Person]:
    surnames = rng.sample(SURNAMES, 44)
    people: list[Person] = []

    def person(position: str, department: str, manager: str, salary: int, pool: int) -> Person:
        female = rng.random() < 0.5
        surname = surnames[len(people)] + ("а" if female else "")
        first = rng.choice(FEMALE if female else MALE)
        patronymic = rng.choice(PATRONYMICS)[1 if female else 0]
        p = Person(1001 + len(people), f"{surname} {first} {patronymic}", surname, first, position, department,
                   manager, salary, pool, skill=round(rng.uniform(0.9, 1.15), 3))
        people.append(p)
        return p

    for _ in range(20):
        person(AM, SALES, HEADS[SALES], rng.randrange(60, 82, 2) * 1000, 30_000)
    for _ in range(10):
        person(KAM, KEY, HEADS[KEY], rng.randrange(95, 125, 5) * 1000, 50_000)
    leads = [person(TL, SUPPORT, HEADS[SUPPORT], 90_000, 40_000) for _ in range(4)]
    for i in range(10):
        lead = leads[[0, 0, 0, 1, 1, 1, 2, 2, 3, 3][i]]
        p = person(SPEC, SUPPORT, lead.name, rng.randrange(50, 62, 2) * 1000, 20_000)
        p.team_lead = lead.employee_id
    # the stories the sample tells
    people[2].pool = 35_000  # senior account manager with a personal revenue plan (Plan sheet)
    people[2].skill = 1.15
    people[7].skill = 0.55  # an account manager far behind on deals: below the gate, no bonus
    people[19].hired = dt.date(2026, 10, 13)  # a mid-period hire: bonus × 19/31
    people[19].pool = 30_000
    people[23].multiplier = 1.2  # individual multiplier of a key-account manager
    people[40].left = dt.date(2026, 10, 20)  # a support specialist leaving mid-period: bonus × 20/31
    return people


def email(p: Person) -> str:
    return f"{translit(p.first)[0]}.{translit(p.surname)}@{DOMAIN}"


# ---------------------------------------------------------------------------------- raw data


def october_day(rng: random.Random, start: dt.date | None = None, end: dt.date | None = None) -> dt.date:
    first = max(start or PERIOD_START, PERIOD_START)
    last = min(end or dt.date(2026, 10, 31), dt.date(2026, 10, 31))
    days = [first + dt.timedelta(d) for d in range((last - first).days + 1)]
    workdays = [d for d in days if d.weekday() < 5] or days
    return rng.choice(workdays)


def make_deals(rng: random.Random, people: list[Person]) -> list[list[str]]:
    rows = []
    deal_no = 50_000
    client_no = 7_000
    for p in people:
        if p.position not in (AM, KAM):
            continue
        am = p.position == AM
        if am:
            won = 11 if p.hired else max(3, round(rng.gauss(14, 1.5) * p.skill))
        else:
            won = max(2, round(rng.gauss(6.5, 0.8) * p.skill))
        lost = rng.randint(2, 6)
        open_ = rng.randint(1, 4)
        clients = [client_no + i for i in range(rng.randint(8, 14))]
        client_no += 20
        key_clients = set(rng.sample(clients, 4))
        for status, n in (("won", won), ("lost", lost), ("open", open_)):
            for _ in range(n):
                deal_no += 1
                client = rng.choice(clients)
                closed = october_day(rng, start=p.hired) if status != "open" else None
                created = (closed or october_day(rng, start=p.hired)) - dt.timedelta(days=rng.randint(3, 40))
                if am:
                    amount = rng.lognormvariate(11.55, 0.35) * p.skill
                else:
                    amount = rng.lognormvariate(13.3, 0.2) * p.skill * (1.2 if client in key_clients else 0.75)
                key = "да" if client in key_clients else "нет"
                rows.append([deal_no, created, closed, p.employee_id, client, status, round(amount, 2), key])
        # a few September deals: in the export, outside the period, filtered out by "dated closed_at"
        for _ in range(rng.randint(0, 2)):
            deal_no += 1
            closed = dt.date(2026, 9, rng.randint(20, 30))
            rows.append([deal_no, closed - dt.timedelta(days=10), closed, p.employee_id, rng.choice(clients), "won",
                         round(rng.lognormvariate(11.5, 0.3), 2), "нет"])
    rows.sort(key=lambda r: (r[2] or r[1], r[0]))
    return [_deal_cells(r, i) for i, r in enumerate(rows)]


def _deal_cells(r: list, i: int) -> list[str]:
    deal, created, closed, manager, client, status, amount, key = r
    if i % 3 == 0:  # as Excel saves a cell formatted with thousands separators
        whole, frac = f"{amount:.2f}".split(".")
        groups = f"{int(whole):,}".replace(",", "\u00a0")
        text = f"{groups},{frac}"
    else:
        text = f"{amount:.2f}".replace(".", ",").rstrip("0").rstrip(",")
    return [str(deal), f"{created:%d.%m.%Y}", f"{closed:%d.%m.%Y}" if closed else "", str(manager), f"К-{client}",
            status, text, key]


def make_requests(rng: random.Random, people: list[Person]) -> list[list]:
    ams = [p for p in people if p.position in (AM, KAM)]
    specs = [p for p in people if p.position == SPEC]
    rows = []
    number = 120_000
    complaint_p = {p.employee_id: rng.uniform(0.01, 0.06) for p in ams}
    reply_h = {p.employee_id: rng.uniform(1.4, 6.0) for p in specs}
    unresolved = {p.employee_id: rng.uniform(0.02, 0.16) for p in specs}
    for p in ams:
        n = rng.randint(25, 45) if p.position == AM else rng.randint(10, 20)
        if p.hired:
            n = n // 2
        for k in range(n):
            spec = rng.choice([s for s in specs if not (s.left and k % 3 == 0)])
            day = october_day(rng, start=p.hired, end=spec.left)
            created = dt.datetime.combine(day, dt.time(rng.randint(9, 17), rng.randrange(0, 60)))
            if k == 0 and p.employee_id % 4 == 0:  # the export also holds a few September requests
                created = created.replace(month=9, day=rng.randint(24, 30))
            reply = created + dt.timedelta(minutes=round(rng.expovariate(1 / reply_h[spec.employee_id]) * 60) + 5)
            solved = None if rng.random() < unresolved[spec.employee_id] else (
                reply + dt.timedelta(minutes=rng.randint(30, 60 * 30)))
            complaint = "да" if rng.random() < complaint_p[p.employee_id] else "нет"
            channel = rng.choice(["телефон", "почта", "чат", "личный кабинет"])
            number += 1
            rows.append([number, created, reply, solved, f"К-{7000 + rng.randint(0, 700)}", p.employee_id,
                         spec.employee_id, spec.team_lead, channel, complaint])
    rows.sort(key=lambda r: (r[1], r[0]))
    return rows


def make_surveys(rng: random.Random, people: list[Person]) -> list[list[str]]:
    rows = []
    for p in people:
        if p.position not in (AM, KAM):
            continue
        happy = rng.uniform(0.45, 0.75) * p.skill
        for _ in range(rng.randint(12, 26)):
            day = october_day(rng, start=p.hired)
            at = dt.datetime.combine(day, dt.time(rng.randint(8, 21), rng.randrange(0, 60)))
            r = rng.random()
            if r < happy:
                score = rng.choice([9, 10])
            else:
                score = rng.choice([7, 8]) if r < happy + 0.25 else rng.randint(2, 6)
            rows.append([f"{at:%Y-%m-%d %H:%M}", str(p.employee_id), f"К-{7000 + rng.randint(0, 700)}", str(score)])
    rows.sort()
    return rows


def make_quality(rng: random.Random, people: list[Person]) -> list[list[str]]:
    return [[str(p.employee_id), "quality", f"{min(100.0, rng.gauss(84, 5) * (0.6 + 0.4 * p.skill)):.1f}", "2026-10"]
            for p in people if p.position in (KAM, TL, SPEC)]


# ---------------------------------------------------------------------------------- plan.xlsx

KPIS = [
    ("deals_won", "Выигранные сделки", "шт.", "count deals where status = won by manager_id dated closed_at",
     "Сделки со статусом «выиграна», закрытые в периоде"),
    ("revenue", "Выручка по выигранным сделкам", "руб.",
     "sum deals.amount where status = won by manager_id dated closed_at", "Сумма выигранных сделок периода"),
    ("key_share", "Доля выручки ключевых клиентов", "%",
     "sum deals.amount where status = won and key_client = да / sum deals.amount where status = won "
     "by manager_id dated closed_at", "Выручка ключевых клиентов / вся выручка"),
    ("complaint_rate", "Доля рекламаций", "%",
     "count requests where Рекламация = да / count requests by Менеджер dated Создано",
     "Обращения с рекламацией / все обращения клиентов менеджера (меньше — лучше)"),
    ("nps", "NPS клиентов", "п.", "nps surveys.score by manager_id dated answered_at",
     "% промоутеров (9–10) − % критиков (0–6)"),
    ("response_time", "Время первого ответа", "ч",
     "mean hours requests.Создано to Ответ by Исполнитель dated Создано",
     "Среднее время от обращения до первого ответа (меньше — лучше)"),
    ("resolved_share", "Доля решённых обращений", "%",
     "count requests where Решено is not empty / count requests by Исполнитель dated Создано",
     "Решённые обращения / все обращения"),
    ("team_response_time", "Время первого ответа группы", "ч",
     "mean hours requests.Создано to Ответ by Тимлид dated Создано", "То же по всей группе (меньше — лучше)"),
    ("team_complaint_rate", "Доля рекламаций группы", "%",
     "count requests where Рекламация = да / count requests by Тимлид dated Создано",
     "Рекламации / обращения группы (меньше — лучше)"),
    ("quality", "Оценка контроля качества", "балл", "", "Оценка отдела качества, 0–100 (файл facts.csv)"),
]

# position, employee_id, kpi_id, weight, base, norm, floor, cap, scale, gate
PLAN = [
    (AM, None, "deals_won", 0.4, 8, 14, 0, 1.5, None, 0.5),
    (AM, None, "revenue", 0.3, 800_000, 1_400_000, 0, 1.5, None, None),
    (AM, None, "complaint_rate", 0.15, 0.10, 0.04, 0, 1.5, None, None),
    (AM, None, "nps", 0.15, 0, 50, 0, 1.5, None, None),
    (KAM, None, "revenue", 0.4, 2_000_000, 3_500_000, 0, 1.5, "kam_linear", None),
    (KAM, None, "key_share", 0.2, 0.3, 0.6, 0, 1.5, "kam_linear", None),
    (KAM, None, "nps", 0.2, 30, 60, 0, 1.5, "kam_linear", None),
    (KAM, None, "quality", 0.2, 70, 85, 0, 1.5, None, None),
    (SPEC, None, "response_time", 0.4, 8, 3, 0, 1.5, None, None),
    (SPEC, None, "resolved_share", 0.3, 0.8, 0.9, 0, 1.5, None, None),
    (SPEC, None, "quality", 0.3, 70, 85, 0, 1.5, None, None),
    (TL, None, "team_response_time", 0.4, 6, 3, 0, 1.5, None, None),
    (TL, None, "team_complaint_rate", 0.3, 0.08, 0.03, 0, 1.5, None, None),
    (TL, None, "quality", 0.3, 75, 88, 0, 1.5, None, None),
    (None, 1003, "revenue", 0.3, 1_200_000, "2 000 000", 0, 1.5, None, None),  # personal plan, typed as text
]
SCALES = [
    ("default", 0.7, 0.9, "steps"), ("default", 1.0, 1.0, "steps"), ("default", 1.1, 1.1, "steps"),
    ("kam_linear", 0.5, 0.0, "linear"), ("kam_linear", 1.0, 1.0, "linear"), ("kam_linear", 1.5, 1.5, "linear"),
]

HEAD_FONT = Font(bold=True)
HEAD_FILL = PatternFill("solid", fgColor="DDEBF7")
PCT, MONEY, DATE, NUM = "0%", "#,##0", "DD.MM.YYYY", "#,##0.##"


def _sheet(wb: Workbook, title: str, header: list[str], rows: list[list], formats: dict[int, str] | None = None,
           widths: list[int] | None = None):
    ws = wb.create_sheet(title)
    ws.append(header)
    for cell in ws[1]:
        cell.font, cell.fill = HEAD_FONT, HEAD_FILL
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    for r in rows:
        ws.append(r)
    for col, fmt in (formats or {}).items():
        for (cell,) in ws.iter_rows(min_row=2, min_col=col, max_col=col):
            if isinstance(cell.value, (int, float, dt.date)):
                cell.number_format = fmt
    for i, w in enumerate(widths or [], start=1):
        ws.column_dimensions[get_column_letter(i)].width = w
    ws.freeze_panes = "A2"
    return ws


def make_plan(people: list[Person]) -> Workbook:
    wb = Workbook()
    wb.remove(wb.active)
    _sheet(wb, "Employees",
           ["Табельный номер", "ФИО", "Должность", "Отдел", "Руководитель", "Email", "Оклад", "Премиальный фонд",
            "Множитель", "Дата приема", "Дата увольнения"],
           [[p.employee_id, p.name, p.position, p.department, p.manager, email(p), p.salary, p.pool, p.multiplier,
             p.hired, p.left] for p in people],
           {7: MONEY, 8: MONEY, 9: "0.00", 10: DATE, 11: DATE}, [14, 36, 34, 26, 32, 28, 11, 14, 11, 13, 15])
    _sheet(wb, "KPIs", ["kpi_id", "name", "unit", "source", "description"], [list(k) for k in KPIS],
           widths=[22, 34, 8, 90, 60])
    _sheet(wb, "Plan", ["position", "employee_id", "kpi_id", "weight", "base", "norm", "floor", "cap", "scale",
                        "gate"],
           [list(r) for r in PLAN], None, [34, 12, 22, 9, 12, 12, 8, 8, 12, 8])
    ws = wb["Plan"]
    for row in ws.iter_rows(min_row=2):
        kpi = row[2].value
        pct = kpi in ("complaint_rate", "key_share", "resolved_share", "team_complaint_rate")
        for cell in row[3:]:
            if isinstance(cell.value, (int, float)):
                is_share = cell.column in (4, 7, 8, 10) or (pct and cell.column in (5, 6))
                cell.number_format = PCT if is_share else NUM
    _sheet(wb, "Scales", ["scale", "threshold", "coefficient", "kind"], [list(s) for s in SCALES], {2: PCT},
           [14, 11, 12, 8])
    _sheet(wb, "Settings", ["setting", "value"],
           [["period", "2026-10"], ["currency", "RUB"], ["language", "ru"], ["digits", 2], ["company", COMPANY]],
           widths=[12, 24])
    return wb


def make_requests_book(rows: list[list]) -> Workbook:
    wb = Workbook()
    wb.remove(wb.active)
    header = ["Номер", "Создано", "Ответ", "Решено", "Клиент", "Менеджер", "Исполнитель", "Тимлид", "Канал",
              "Рекламация"]
    fmt = "DD.MM.YYYY HH:MM"
    _sheet(wb, "Обращения", header, rows, {2: fmt, 3: fmt, 4: fmt}, [9, 17, 17, 17, 9, 10, 12, 9, 15, 12])
    return wb


# ------------------------------------------------------------------------------------ writing


def save_workbook(wb: Workbook, path: Path) -> None:
    """Save with fixed document times and zip entry times, so the bytes do not change between runs."""
    wb.properties.creator = "xl_kpi scripts/make_sample.py"
    wb.properties.created = wb.properties.modified = FIXED_TIME
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as archive:
        ExcelWriter(wb, archive).write_data()
    out = io.BytesIO()
    with zipfile.ZipFile(raw) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            entry = zipfile.ZipInfo(info.filename, date_time=FIXED_TIME.timetuple()[:6])
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16
            dst.writestr(entry, src.read(info.filename))
    path.write_bytes(out.getvalue())


def write_csv(path: Path, header: list[str], rows: list[list[str]], *, sep: str, encoding: str,
              newline: str = "\r\n") -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=sep, lineterminator=newline)
    writer.writerow(header)
    writer.writerows(rows)
    path.write_bytes(buf.getvalue().encode(encoding))


def main(out: Path = OUT) -> list[Path]:
    """Write the sample into ``out``; returns the files written."""
    rng = random.Random(SEED)
    out.mkdir(parents=True, exist_ok=True)
    people = make_people(rng)
    deals = make_deals(rng, people)
    requests = make_requests(rng, people)
    surveys = make_surveys(rng, people)
    quality = make_quality(rng, people)
    files = [out / n for n in ("plan.xlsx", "deals.csv", "requests.xlsx", "surveys.csv", "facts.csv")]
    save_workbook(make_plan(people), files[0])
    write_csv(files[1], ["deal_id", "created_at", "closed_at", "manager_id", "client_id", "status", "amount",
                         "key_client"], deals, sep=";", encoding="cp1251")
    save_workbook(make_requests_book(requests), files[2])
    write_csv(files[3], ["answered_at", "manager_id", "client_id", "score"], surveys, sep=",", encoding="utf-8-sig")
    write_csv(files[4], ["employee_id", "kpi_id", "fact", "period"], quality, sep=",", encoding="utf-8",
              newline="\n")
    return files


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help="output folder (default: workbooks/sample)")
    args = parser.parse_args()
    for f in main(args.out):
        print(f.relative_to(ROOT) if f.is_relative_to(ROOT) else f)

"""The plan workbook's schema: its sheets, their columns and the header aliases accepted for each
(English and Russian), the Settings keys, the language and scale-kind words.

The aliases are listed for users in docs/plan.md; headers are compared with
:func:`~xl_kpi.inputs.tables.header_key` (case, spaces and underscores ignored).
"""

from __future__ import annotations

from dataclasses import dataclass

from xl_kpi.inputs.tables import EMPLOYEE_ID, KPI_ID

DEFAULT_SCALE_NAME = "default"


@dataclass(frozen=True)
class Column:
    """A column of a plan sheet: canonical name, accepted header aliases, required or not."""

    name: str
    aliases: tuple[str, ...]
    required: bool = False


@dataclass(frozen=True)
class SheetSpec:
    """A plan sheet: canonical name, accepted sheet-name aliases, columns, required or not."""

    name: str
    aliases: tuple[str, ...]
    columns: tuple[Column, ...]
    required: bool = True

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


POSITION = ("position", "role", "job title", "title", "должность", "позиция")
_NAME = ("name", "full name", "employee name", "фио", "ф и о", "сотрудник", "имя")

SHEETS: dict[str, SheetSpec] = {
    s.name: s
    for s in (
        SheetSpec("Employees", ("Employees", "Staff", "People", "Сотрудники", "Персонал", "Работники"), (
            Column("employee_id", EMPLOYEE_ID, True),
            Column("name", _NAME, True),
            Column("position", POSITION, True),
            Column("department", ("department", "dept", "отдел", "подразделение", "департамент")),
            Column("manager", ("manager", "supervisor", "руководитель", "начальник")),
            Column("email", ("email", "e mail", "mail", "почта", "эл почта", "электронная почта")),
            Column("salary", ("salary", "base salary", "fixed pay", "оклад", "фиксированная часть",
                              "постоянная часть")),
            Column("bonus_pool", ("bonus_pool", "bonus pool", "pool", "target bonus", "variable pay",
                                  "премиальный фонд", "плановая премия", "переменная часть", "фонд премии",
                                  "премия план", "премия"), True),
            Column("multiplier", ("multiplier", "individual multiplier", "personal multiplier", "множитель",
                                  "индивидуальный коэффициент", "персональный коэффициент", "коэффициент")),
            Column("hired", ("hired", "hire date", "date hired", "start date", "принят", "дата приема",
                             "дата найма", "дата начала работы")),
            Column("left", ("left", "leave date", "date left", "end date", "termination date", "уволен",
                            "дата увольнения", "дата окончания работы")),
            Column("aliases", ("aliases", "alias", "also known as", "crm names", "logins", "псевдонимы",
                               "псевдоним", "имена в crm", "логины")),
        )),
        SheetSpec("KPIs", ("KPIs", "KPI", "Indicators", "Показатели", "KPI показатели", "Ключевые показатели"), (
            Column("kpi_id", (*KPI_ID, "code", "код"), True),
            Column("name", ("name", "kpi name", "title", "название", "наименование", "показатель",
                            "ключевой показатель"), True),
            Column("unit", ("unit", "units", "единица", "ед изм", "единица измерения")),
            Column("source", ("source", "formula", "источник", "источник данных", "расчет", "формула")),
            Column("description", ("description", "comment", "описание", "комментарий")),
        )),
        SheetSpec("Plan", ("Plan", "Matrix", "KPI matrix", "План", "Матрица", "Матрица KPI"), (
            Column("position", POSITION),
            Column("employee_id", EMPLOYEE_ID),
            Column("kpi_id", KPI_ID, True),
            Column("weight", ("weight", "вес", "доля"), True),
            Column("base", ("base", "minimum", "min", "база", "минимум"), True),
            Column("norm", ("norm", "target", "plan", "goal", "норма", "план", "цель"), True),
            Column("floor", ("floor", "min score", "score floor", "нижняя граница", "минимальная оценка")),
            Column("cap", ("cap", "max score", "score cap", "верхняя граница", "максимальная оценка")),
            Column("scale", ("scale", "шкала", "шкала коэффициентов")),
            Column("gate", ("gate", "gate threshold", "барьер", "порог отсечения", "стоп фактор", "отсечка")),
            Column("payout", ("payout", "payout kind", "kind of payout", "вид выплаты", "тип выплаты")),
            Column("rate", ("rate", "commission rate", "rate per unit", "ставка", "ставка за единицу")),
            Column("threshold", ("threshold", "payout threshold", "порог", "порог выплаты")),
            Column("amount", ("amount", "fixed amount", "сумма", "фиксированная сумма", "сумма выплаты")),
            Column("max_payout", ("max_payout", "max payout", "payout cap", "максимальная выплата",
                                  "потолок выплаты")),
            Column("tiers", ("tiers", "tier set", "ступени", "ступени ставок")),
        )),
        SheetSpec("Scales", ("Scales", "Шкалы", "Шкалы коэффициентов"), (
            Column("scale", ("scale", "name", "шкала", "название"), True),
            Column("threshold", ("threshold", "score", "from", "порог", "от", "выполнение от", "оценка от"), True),
            Column("coefficient", ("coefficient", "coeff", "коэффициент", "премиальный коэффициент", "коэф"), True),
            Column("kind", ("kind", "type", "вид", "тип")),
            Column("below", ("below", "below first", "ниже порога", "ниже")),
            Column("cap", ("cap", "max coefficient", "потолок", "максимум")),
        ), required=False),
        SheetSpec("Tiers", ("Tiers", "Tier rates", "Ступени", "Ступени ставок"), (
            Column("tiers", ("tiers", "tier set", "name", "ступени", "название"), True),
            Column("from", ("from", "start", "от", "начало"), True),
            Column("to", ("to", "end", "до", "конец")),
            Column("rate", ("rate", "ставка"), True),
            Column("mode", ("mode", "режим")),
        ), required=False),
        SheetSpec("Sources", ("Sources", "Data sources", "Источники", "Источники данных"), (
            Column("table", ("table", "table name", "name", "таблица", "имя таблицы", "название"), True),
            Column("path", ("path", "file", "files", "путь", "файл", "файлы"), True),
            Column("sheet", ("sheet", "лист")),
            Column("encoding", ("encoding", "кодировка")),
            Column("separator", ("separator", "delimiter", "sep", "разделитель")),
        ), required=False),
        SheetSpec("Rates", ("Rates", "Exchange rates", "Currency rates", "Курсы", "Курсы валют"), (
            Column("currency", ("currency", "валюта", "код валюты"), True),
            Column("rate", ("rate", "exchange rate", "курс", "курс валюты"), True),
            Column("date", ("date", "from", "valid from", "дата", "с даты", "действует с"), False),
        ), required=False),
        SheetSpec("Adjustments", ("Adjustments", "Corrections", "Корректировки", "Корректировки выплат",
                                  "Доплаты и удержания"), (
            Column("employee_id", EMPLOYEE_ID, True),
            Column("amount", ("amount", "sum", "adjustment", "сумма", "корректировка", "сумма корректировки"),
                   True),
            Column("reason", ("reason", "comment", "why", "причина", "основание", "комментарий"), True),
            Column("kpi_id", KPI_ID),
        ), required=False),
        SheetSpec("Settings", ("Settings", "Options", "Настройки", "Параметры"), (
            Column("setting", ("setting", "key", "parameter", "name", "параметр", "настройка")),
            Column("value", ("value", "значение")),
        ), required=False),
    )
}

SETTINGS_KEYS: dict[str, tuple[str, ...]] = {
    "period": ("period", "month", "период", "месяц"),
    "currency": ("currency", "валюта"),
    "language": ("language", "lang", "язык"),
    "digits": ("digits", "rounding", "rounding digits", "decimals", "округление", "знаков",
               "знаков после запятой", "точность"),
    "company": ("company", "company name", "компания", "организация", "название компании"),
}
LANGUAGES = {"en": "en", "english": "en", "англ": "en", "английский": "en", "ru": "ru", "russian": "ru",
             "рус": "ru", "русский": "ru"}
SCALE_KINDS = {"steps": "steps", "step": "steps", "ступени": "steps", "ступенчатая": "steps", "шаги": "steps",
               "linear": "linear", "линейная": "linear", "интерполяция": "linear"}

PAYOUT_KIND_WORDS: dict[str, str] = {
    "coefficient": "coefficient", "scale": "coefficient", "коэффициент": "coefficient", "по шкале": "coefficient",
    "fixed": "fixed", "one off": "fixed", "фиксированная": "fixed", "разовая": "fixed",
    "proportional": "proportional", "пропорциональная": "proportional",
    "per unit": "per_unit", "за единицу": "per_unit", "сдельная": "per_unit",
    "share": "share", "commission": "share", "доля": "share", "комиссия": "share", "процент": "share",
}
"""``Plan.payout`` values (compared as headers are: case, spaces and underscores ignored) → the engine's kind."""

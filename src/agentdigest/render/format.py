"""Numbers, changes and dates as readers see them, in the report's locale (Babel).

Values in ReportData are unrounded; every rounding decision lives here. Rates are shown with
one decimal and change in percentage points ("+2.1 pp"); other metrics change by a percent
("+12%", one decimal under 10%). A missing value is "n/a"; a value with nothing before it is "new".
"""

from __future__ import annotations

import math
import re
import unicodedata
from datetime import date, datetime, timedelta
from decimal import ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_datetime, format_interval, format_skeleton
from babel.numbers import format_compact_currency, format_currency, format_decimal, format_percent, format_scientific

from ..errors import RenderError
from ..changes import finite_number

NA = "n/a"
NEW = "new"
FLAT = "no change"
_UNIT_WORD = {"day": "day", "week": "week", "month": "month"}
#: From here a figure is shown in scientific notation ("1.2E308 ms"): it means nothing in ordinary digits
#: (10^15 ms is 31,700 years), and Babel's decimal arithmetic fails from about 10^25 (its 28 digits): a
#: latency of 1e308 ms, valid data, failed the whole run (found in a dirty-data audit).
HUGE = 1e15
#: The house style's date patterns (English: "Mon 23 Nov 2026") and the CLDR skeletons that give every
#: other locale its own order and punctuation (de "Mo., 23. Nov. 2026", en_US "Mon, Nov 23, 2026").
_SKELETONS = (("EEE d MMM y", "yMMMEd"), ("EEE d MMM", "MMMEd"), ("d MMM y", "yMMMd"), ("LLLL y", "yMMMM"))


def _decimals(pattern: str, n: int) -> str:
    """A Babel number pattern with exactly ``n`` fraction digits."""
    return re.sub(r"0(?:\.0+)?", "0" + ("." + "0" * n if n else ""), pattern, count=1)


def shown(number: float, digits: int) -> float:
    """``number`` rounded to ``digits`` decimals as Babel prints it (half-even on its decimal text), so a
    choice made on the figure matches what is printed: Python's round(0.05, 1) is 0.1 where Babel prints
    "0.0", and round(9.95, 1) is 9.9 where Babel prints "10.0"."""
    return float(Decimal(str(number)).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_EVEN))


def _same_place(size: int, scale: int, digits: int) -> int:
    """How many of ``digits`` decimals a short form counting in ``scale`` (a number from ``size`` up) keeps
    so its last digit is on the place English's ends on: "10.56M" (two decimals on millions) is to the ten
    thousand, so a locale counting in ten thousands (ja 万) shows none ("1056万")."""
    last_place = 3 * ((len(str(size)) - 1) // 3) - digits
    return min(digits, max(0, len(str(scale)) - 1 - last_place))


class Formatter:
    """Formats values for one locale and timezone."""

    def __init__(self, locale: str = "en", timezone: str = "UTC"):
        try:
            self.locale = Locale.parse((locale or "en").replace("-", "_"))
        except (UnknownLocaleError, ValueError, TypeError):
            raise RenderError(f"unknown locale {locale!r} (expected a name like en, en_GB or de)") from None
        try:
            self.tz = ZoneInfo(timezone or "UTC")
        except (KeyError, ValueError):
            self.tz = ZoneInfo("UTC")
        self._pct = {n: _decimals(self.locale.percent_formats[None].pattern, n) for n in (0, 1)}
        money = self.locale.currency_formats["standard"].pattern.split(";")[0]
        self._money = {n: _decimals(money, n) for n in (0, 2)}

    # values -----------------------------------------------------------------------------
    def count(self, value: Any) -> str:
        number = finite_number(value)
        if number is None:
            return NA
        if abs(number) >= HUGE:
            return format_scientific(number, format="0.0E0", locale=self.locale)
        if abs(number - round(number)) < 1e-9:
            return format_decimal(round(number), locale=self.locale)
        return format_decimal(number, format="#,##0.0", locale=self.locale)

    def percent(self, value: Any) -> str:
        """A rate given on a 0-100 scale."""
        number = finite_number(value)
        if number is None:
            return NA
        if abs(number) >= HUGE:  # as the other figures: Babel's percent of 1e300 raised InvalidOperation
            return self.count(number) + "%"
        # On the decimal text, as shown() and signed_pp round: the float 61.15 / 100 is 0.61149999..., which
        # read "61.1%" where "+61.2 pp" and half-even read 61.2 (an eighth of x.x5 rates; a consistency audit)
        return format_percent(Decimal(str(number)).scaleb(-2), format=self._pct[1], locale=self.locale)

    def percent_under(self, value: Any, threshold: Any) -> str:
        """A rate as :meth:`percent` shows it, except one under ``threshold`` that would round onto it: that one is
        cut, not rounded (94.95 against 95 reads 94.9%). Found in a consistency audit: the completeness warning
        read "Only 95.0% of the expected events arrived (warning threshold 95.0%)" in every format."""
        number, limit = finite_number(value), finite_number(threshold)
        if number is not None and limit is not None and number < limit <= shown(number, 1):
            return self.percent(float(Decimal(str(number)).quantize(Decimal("0.1"), rounding=ROUND_FLOOR)))
        return self.percent(value)

    def usd(self, value: Any) -> str:
        number = finite_number(value)
        if number is None:
            return NA
        if abs(number) >= HUGE:
            return format_currency(number, "USD", format="¤0.0E0", locale=self.locale, currency_digits=False)
        if abs(number) >= 10_000_000:  # "$785B", not "$785,000,000,000" (found in a rendering audit)
            return self._compact_usd(number)
        if number != 0 and shown(number, 2) == 0:  # a tenth of a cent spent is not "$0.00": "<$0.01"
            bound = format_currency(0.01 if number > 0 else -0.01, "USD", format=self._money[2], locale=self.locale,
                                    currency_digits=False)
            return f"<{bound}" if number > 0 else f"> {bound}"
        digits = 0 if abs(shown(number, 2)) >= 1000 else 2  # 999.996 is "$1,000", not "$1,000.00"
        return format_currency(number, "USD", format=self._money[digits], locale=self.locale,
                               currency_digits=False)

    def ms(self, value: Any) -> str:
        number = finite_number(value)
        if number is None:
            return NA
        if abs(number) >= HUGE:
            return self.count(number) + " ms"
        # Each unit up to where its rounded figure would reach the next (not "1,000 ms" or "60.0 min");
        # 10^9 ms read "1,000,000.00 s" (found in a rendering audit).
        if abs(round(number)) < 1000:
            return format_decimal(number, format="#,##0", locale=self.locale) + " ms"
        if abs(round(number / 1000, 2)) < 60:
            return format_decimal(number / 1000, format="#,##0.00", locale=self.locale) + " s"
        for size, unit, limit in ((60_000, "min", 60), (3_600_000, "h", 24)):
            if abs(round(number / size, 1)) < limit:
                return format_decimal(number / size, format="#,##0.0", locale=self.locale) + f" {unit}"
        return format_decimal(number / 86_400_000, format="#,##0.0", locale=self.locale) + " d"

    def tokens(self, value: Any) -> str:
        number = finite_number(value)
        if number is None:
            return NA
        if abs(number) >= HUGE:
            return self.count(number)
        if abs(number) < 10_000:
            return self.count(round(number))
        # Some locales have no short form for thousands (de: "996695"): then the grouped number reads better.
        return self._compact(number) or self.count(round(number))

    def _compact(self, number: float) -> str | None:
        """``number`` in the locale's short form, with one decimal under a million and two from a million
        (so 1,034,510 and 1,049,174 do not both read "1M" next to "996.7K"); None where the locale has no
        short form for its size. Babel's own short form drops trailing zeros, so a day-by-day column read
        "1.01M, 971K, 928.5K" and "1M" beside "1.05M" (found in a reader audit): here "971.0K", "1.00M".

        Those decimals are counted on thousands and millions. A locale whose units step by ten thousand
        (ja, zh, ko: 万, 億) gets only as many as show the same place: 10,559,300 is "10.56M" to the ten
        thousand, so "1056万", not "1055.93万" (found in a rendering audit)."""
        forms = self.locale.compact_decimal_formats["short"]["other"]
        sizes = sorted((int(size) for size in forms), reverse=True)
        for i, size in enumerate(sizes):
            if abs(number) < size:
                continue
            pattern = forms[str(size)].pattern
            if pattern == "0":
                return None
            scale = size // 10 ** (pattern.count("0") - 1)
            digits = _same_place(size, scale, 2 if size >= 1_000_000 else 1)
            if i and abs(shown(number / scale, digits)) * scale >= sizes[i - 1]:  # 999,960 is "1.00M"
                return self._compact(math.copysign(sizes[i - 1], number))
            fixed = re.sub(r"0+(?:\.0+)?", "0" + ("." + "0" * digits if digits else ""), pattern, count=1)
            return format_decimal(number / scale, format=fixed, locale=self.locale)
        return None

    def _compact_usd(self, number: float) -> str:
        """A large amount in the locale's short form ("$785B"), with two decimals on English's millions and
        up, and in other units only as many as end on the same place (see _compact): ja "$1056万" where it
        read "$1055.93万". Babel drops trailing zeros ("$10M") and carries 999,996,000 up to "$1B"."""
        forms = self.locale.compact_currency_formats["short"]["other"]
        digits = 2
        size = max((int(size) for size in forms if int(size) <= abs(number)), default=None)
        if size is not None and forms[str(size)].pattern != "0":
            digits = _same_place(size, size // 10 ** (forms[str(size)].pattern.count("0") - 1), digits)
        return format_compact_currency(number, "USD", format_type="short", locale=self.locale, fraction_digits=digits)

    def value(self, value: Any, unit: str | None) -> str:
        """A metric value in its unit."""
        return {
            "percent": self.percent, "usd": self.usd, "ms": self.ms, "tokens": self.tokens,
        }.get(unit or "count", self.count)(value)

    # changes ----------------------------------------------------------------------------
    def signed_pct(self, pct: Any) -> str:
        number = finite_number(pct)
        if number is None:
            return NA
        if abs(number) >= HUGE:
            return format_percent(number / 100, format="+0.0E0%;-0.0E0%", locale=self.locale)
        # decided on the figure as printed: 9.96 reads "+10%" like its column's other tens, not "+10.0%"
        digits = 0 if abs(shown(number, 1)) >= 10 else 1
        plain = self._pct[digits].split(";")[0]  # the locale's own spacing: de "+12 %" like "61,0 %"
        pattern = f"+{plain};-{plain}"
        if shown(number, digits) == 0:  # not "+0.0%" under an arrow
            return FLAT
        return format_percent(number / 100, format=pattern, locale=self.locale)

    def signed_pp(self, pp: Any) -> str:
        number = finite_number(pp)
        if number is None:
            return NA
        if shown(number, 1) == 0:  # 0.05 prints "+0.0": no change, not "▲ +0.0 pp"
            return FLAT
        return format_decimal(number, format="+#,##0.0;-#,##0.0", locale=self.locale) + " pp"

    def change(self, metric: Any) -> str:
        """The change of a MetricValue: "+2.1 pp", "-12%", "new", "no change" or "n/a"."""
        if metric is None or finite_number(metric.value) is None:
            return NA
        if metric.direction == "flat":
            return FLAT
        if metric.unit == "percent" and finite_number(metric.change_pp) is not None:
            # a rate after 0.0% moved by points like any other ("+40.0 pp", as its by-agent rows read);
            # "new" is left for a figure with nothing before it
            return self.signed_pp(metric.change_pp)
        if metric.direction == "new":
            return NEW
        if metric.unit == "percent":
            return self.signed_pp(metric.change_pp)
        return self.signed_pct(metric.change_pct)

    def change_between(self, current: Any, previous: Any, *, rate: bool = False) -> str:
        """The change between two raw values (for breakdown rows, which carry no MetricValue)."""
        cur, prev = finite_number(current), finite_number(previous)
        if cur is None:
            return NA
        if rate:
            return NA if prev is None else self.signed_pp(cur - prev)
        if prev is None or prev == 0:
            return NEW if cur != 0 else (FLAT if prev == 0 else NA)
        return self.signed_pct((cur - prev) / abs(prev) * 100)

    # dates ------------------------------------------------------------------------------
    def day(self, value: Any) -> str:
        """A date as "Mon 23 Nov"."""
        if isinstance(value, str):
            try:
                value = date.fromisoformat(value[:10])
            except ValueError:
                return value
        if not isinstance(value, date):
            return NA
        if str(self.locale) != "en":
            return format_skeleton("MMMEd", value, locale=self.locale)
        return format_date(value, "EEE d MMM", locale=self.locale)

    def day_digits(self, value: Any) -> str:
        """A date as month and day in digits, in the locale's order ("11/23", "23.11."): a chart label any
        font can draw."""
        try:
            day = date.fromisoformat(str(value)[:10])
        except ValueError:
            return str(value)
        text = "".join(ch for ch in format_skeleton("Md", day, locale=self.locale) if unicodedata.category(ch) != "Cf")
        return text if text.isascii() else day.strftime("%m-%d")

    def moment(self, value: Any, pattern: str = "d MMM y, HH:mm") -> str:
        """A timestamp (datetime or ISO string) in the report's timezone."""
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                return value
        if not isinstance(value, datetime):
            return NA
        if value.tzinfo is None:
            value = value.replace(tzinfo=ZoneInfo("UTC"))
        if str(self.locale) != "en":
            for english, skeleton in _SKELETONS:
                if pattern.startswith(english):
                    rest = pattern[len(english):]
                    return (format_skeleton(skeleton, value, tzinfo=self.tz, locale=self.locale)
                            + (format_datetime(value, rest, tzinfo=self.tz, locale=self.locale) if rest else ""))
        return format_datetime(value, pattern, tzinfo=self.tz, locale=self.locale)

    def span(self, kind: str, start: Any, end: Any, *, year: bool = True) -> str:
        """The days of a period [start, end) in the locale: "16 – 22 Nov 2026" (a week), "Sat, 21 Nov 2026"
        (a day), "November 2026" (a month); ``year=False`` leaves the year out where the locale allows."""
        try:
            first = datetime.fromisoformat(start) if isinstance(start, str) else start
            after = datetime.fromisoformat(end) if isinstance(end, str) else end
            first, last = first.astimezone(self.tz), (after - timedelta(seconds=1)).astimezone(self.tz)
        except (TypeError, ValueError, AttributeError):
            return NA
        # en: day before month ("16 – 22 Nov"), as the reports' other English dates
        locale = Locale.parse("en_GB") if str(self.locale) == "en" else self.locale
        if kind == "month":  # the month's name alone is LLLL ("Sept" came of the skeleton MMMM in en_GB)
            return format_skeleton("yMMMM", first, locale=locale) if year else format_date(first, "LLLL", locale=locale)
        if first.date() == last.date():
            text = format_skeleton("yMMMEd" if year else "MMMEd", first, locale=locale)
        else:
            text = format_interval(first.date(), last.date(), "yMMMd" if year else "MMMd", locale=locale)
        # en_GB's "Sept" beside the reports' other English dates' "Sep" (a re-check: one report had both)
        return text.replace("Sept", "Sep") if str(self.locale) == "en" else text

    def period_word(self, kind: str) -> str:
        return _UNIT_WORD.get(kind, "period")


@lru_cache(maxsize=8)
def _counter(locale: str) -> Formatter:
    return Formatter(locale)


def count_in(context: Any, value: Any) -> str:
    """``value`` as a count in the locale of the report a template context (``data``) holds: the formats write
    the rows a table leaves out with it (a cardinality audit read "and 2993 more agents" beside "3,000")."""
    data = context.get("data") if hasattr(context, "get") else None
    settings = getattr(data, "settings", None) or {}
    return _counter(str(settings.get("locale") or "en")).count(value)

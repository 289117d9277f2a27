"""Number, change and date formatting (Babel), and the opening sentence."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentdigest.errors import RenderError
from agentdigest.render.context import build_context, opening_sentence
from agentdigest.render.format import Formatter
from render_fixtures import make_report, metric

EN = Formatter("en", "Europe/Berlin")
DE = Formatter("de", "Europe/Berlin")


@pytest.mark.parametrize(("fmt", "method", "value", "expected"), [
    (EN, "count", 2480, "2,480"),
    (EN, "count", 1234567, "1,234,567"),
    (EN, "count", 12.5, "12.5"),
    (EN, "count", None, "n/a"),
    (EN, "count", float("nan"), "n/a"),
    (EN, "percent", 61.437, "61.4%"),
    (EN, "percent", 0, "0.0%"),
    (EN, "percent", None, "n/a"),
    (EN, "usd", 25.8712, "$25.87"),
    (EN, "usd", 9739.4, "$9,739"),
    (EN, "usd", -12.5, "-$12.50"),
    (EN, "ms", 899.4, "899 ms"),
    (EN, "ms", 2160.2, "2.16 s"),
    (EN, "ms", 999.6, "1.00 s"),  # rounded to the next unit's threshold: the next unit
    (EN, "ms", 59_999, "1.0 min"),
    (EN, "ms", 3_599_000, "1.0 h"),
    (EN, "ms", 86_390_000, "1.0 d"),
    (EN, "ms", 90_000, "1.5 min"),  # long waits in units a reader knows: 10^9 ms read "1,000,000.00 s"
    (EN, "ms", 7_200_000, "2.0 h"),
    (EN, "ms", 1e9, "11.6 d"),
    (EN, "usd", 9_999_999, "$9,999,999"),
    (EN, "usd", 785e9, "$785B"),  # was "$785,000,000,000", wrapped mid-number in the PDF
    (DE, "usd", 12_345_678, "12,35\xa0Mio.\xa0$"),
    (EN, "tokens", 1710.2, "1,710"),
    (EN, "tokens", 4_240_000, "4.24M"),
    (EN, "tokens", 1_034_510, "1.03M"),  # not "1M" next to 1,049,174's "1.05M"
    (EN, "tokens", 996_700, "996.7K"),
    # a reader audit: one day-by-day column read "1.01M, 971K, 928.5K", and "1M" stood beside "1.05M"
    (EN, "tokens", 971_000, "971.0K"),
    (EN, "tokens", 1_001_200, "1.00M"),
    (EN, "tokens", 999_960, "1.00M"),  # rounds to a million: millions' two decimals
    (DE, "tokens", 1_001_200, "1,00\xa0Mio."),
    (DE, "tokens", 996_695, "996.695"),  # German has no short thousands: grouped, not "996695"
    (DE, "tokens", 1_034_510, "1,03\xa0Mio."),
    (EN, "signed_pct", 12.2, "+12%"),
    (EN, "signed_pct", -3.71, "-3.7%"),
    (EN, "signed_pct", 0.01, "no change"),
    # decided on the figure as printed (Babel rounds half-even on the decimal text, Python's round on the float):
    (EN, "signed_pct", 9.96, "+10%"),  # not "+10.0%" beside "+19%"
    (EN, "signed_pct", 0.05, "no change"),  # not "+0.0%"
    (EN, "signed_pp", 0.05, "no change"),  # not "▲ +0.0 pp"
    (EN, "usd", 999.996, "$1,000"),  # not "$1,000.00"
    (EN, "signed_pp", 2.14, "+2.1 pp"),
    (EN, "signed_pp", -0.04, "no change"),
    (EN, "day", "2026-11-23", "Mon 23 Nov"),
    (DE, "count", 2480, "2.480"),
    (DE, "percent", 61.437, "61,4\xa0%"),
    (DE, "usd", 9739.4, "9.739\xa0$"),
    (DE, "signed_pp", 2.14, "+2,1 pp"),
    (DE, "signed_pct", 12.2, "+12\xa0%"),  # spaced like the locale's rates ("61,4 %")
    (DE, "signed_pct", -3.71, "-3,7\xa0%"),
    # Beyond 10^15, scientific: Babel failed from about 10^25, and a valid latency of 1e308 ms failed the run
    (EN, "ms", 1e308, "1.0E308 ms"),
    (DE, "ms", 5.26e306, "5,3E306 ms"),
    (EN, "usd", 2e300, "$2.0E300"),
    (EN, "count", 1e30, "1.0E30"),
    (EN, "tokens", 9.2e24, "9.2E24"),
    (EN, "signed_pct", 2.6e306, "+2.6E306%"),
    (EN, "signed_pct", -1e20, "-1.0E20%"),
])
def test_values(fmt: Formatter, method: str, value: object, expected: str) -> None:
    assert getattr(fmt, method)(value) == expected


_TOKEN_TOTALS = (12_345, 999_960, 1_234_567, 10_559_300, 105_593_000, 1_055_930_000, 12_345_678_901)


@pytest.mark.parametrize(("locale", "expected"), [
    ("en_US", ["12.3K", "1.00M", "1.23M", "10.56M", "105.59M", "1.06B", "12.35B"]),
    ("de_DE", ["12.345", "999.960", "1,23\xa0Mio.", "10,56\xa0Mio.", "105,59\xa0Mio.", "1,06\xa0Mrd.", "12,35\xa0Mrd."]),
    ("fr_FR", ["12,3\xa0k", "1,00\xa0M", "1,23\xa0M", "10,56\xa0M", "105,59\xa0M", "1,06\xa0Md", "12,35\xa0Md"]),
    # units of ten thousand: each figure to the same place as English's ("10.56M" is to the ten thousand),
    # where it read "1055.93万" and "123.46万"
    ("ja_JP", ["1.2万", "100万", "123万", "1056万", "1.06億", "10.6億", "123.5億"]),
    ("zh_CN", ["1.2万", "100万", "123万", "1056万", "1.06亿", "10.6亿", "123.5亿"]),
    ("ko_KR", ["1.2만", "100만", "123만", "1056만", "1.06억", "10.6억", "123.5억"]),
])
def test_compact_token_totals_show_the_same_place_in_every_locale(locale: str, expected: list[str]) -> None:
    fmt = Formatter(locale)
    assert [fmt.tokens(n) for n in _TOKEN_TOTALS] == expected
    assert [fmt.tokens(-n) for n in _TOKEN_TOTALS] == ["-" + e for e in expected]


_AMOUNTS = (10_000_000, 10_559_300, 99_995_000, 105_593_000, 1_055_930_000, 12_345_678_901, 1_234_567_890_123)


@pytest.mark.parametrize(("locale", "expected"), [
    ("en_US", ["$10M", "$10.56M", "$100M", "$105.59M", "$1.06B", "$12.35B", "$1.23T"]),
    ("de_DE", ["10\xa0Mio.\xa0$", "10,56\xa0Mio.\xa0$", "100\xa0Mio.\xa0$", "105,59\xa0Mio.\xa0$", "1,06\xa0Mrd.\xa0$",
               "12,35\xa0Mrd.\xa0$", "1,23\xa0Bio.\xa0$"]),
    ("fr_FR", ["10\xa0M\xa0$US", "10,56\xa0M\xa0$US", "100\xa0M\xa0$US", "105,59\xa0M\xa0$US", "1,06\xa0Md\xa0$US",
               "12,35\xa0Md\xa0$US", "1,23\xa0Bn\xa0$US"]),
    # units of ten thousand: each amount to the same place as English's, where it read "$1055.93万" and
    # "$123.46億"; 99,995,000 carries up to the next unit as English's "$100M" does
    ("ja_JP", ["$1000万", "$1056万", "$1億", "$1.06億", "$10.6億", "$123.5億", "$1.23兆"]),
    ("zh_CN", ["US$1000万", "US$1056万", "US$1亿", "US$1.06亿", "US$10.6亿", "US$123.5亿", "US$1.23万亿"]),
    ("ko_KR", ["US$1000만", "US$1056만", "US$1억", "US$1.06억", "US$10.6억", "US$123.5억", "US$1.23조"]),
])
def test_compact_amounts_show_the_same_place_in_every_locale(locale: str, expected: list[str]) -> None:
    fmt = Formatter(locale)
    assert [fmt.usd(n) for n in _AMOUNTS] == expected
    assert [fmt.usd(-n) for n in _AMOUNTS] == ["-" + e for e in expected]


@pytest.mark.parametrize(("locale", "amounts"), [
    ("en", {0.004: "<$0.01", 0.005: "<$0.01", 0.0051: "$0.01", -0.001: "> -$0.01", 0.0: "$0.00", 0.015: "$0.02"}),
    ("de", {0.004: "<0,01\xa0$", -0.001: "> -0,01\xa0$", 0.0: "0,00\xa0$"}),
])
def test_an_amount_under_half_a_cent_is_not_zero(locale: str, amounts: dict[float, str]) -> None:
    """A model that cost a tenth of a cent read "$0.00", as if it cost nothing (half-even: 0.005 too)."""
    fmt = Formatter(locale)
    assert {n: fmt.usd(n) for n in amounts} == amounts


def test_a_negative_zero_reads_as_zero() -> None:
    """PostgreSQL sums a cost column whose only values are -0.0 to -0.0 (DuckDB and Spark to 0.0), a valid cost
    and latency by the contract (not negative): its report read "-$0.00" and "-0 ms" where the others read
    "$0.00" and "0 ms" (found in the trap audit, tests/test_trap_audit.py)."""
    fmt = Formatter("en")
    assert (fmt.usd(-0.0), fmt.ms(-0.0), fmt.percent(-0.0), fmt.count(-0.0)) == ("$0.00", "0 ms", "0.0%", "0")


@pytest.mark.parametrize(("name", "cur", "prev", "expected"), [
    ("resolution_rate", 61.4, 59.3, "+2.1 pp"),  # rates change in points, never percent of percent
    ("conversations", 2480, 2210, "+12%"),
    ("errors", 57, 65, "-12%"),
    ("errors", 57, 0, "new"),
    ("resolution_rate", 40.0, 0.0, "+40.0 pp"),  # a rate after 0.0% moved by points, as its by-agent rows read
    ("error_rate", 0.04, 0.0, "no change"),  # ... and a move too small to show is none
    ("resolution_rate", 40.0, None, "new"),  # nothing before it
    ("errors", 57, None, "new"),
    ("errors", 0, 0, "no change"),
    ("conversations", None, 2210, "n/a"),
    ("p95_latency_ms", 2100.0, 2100.0, "no change"),
])
def test_changes(name: str, cur: object, prev: object, expected: str) -> None:
    assert EN.change(metric(name, cur, prev)) == expected


@pytest.mark.parametrize(("cur", "prev", "rate", "expected"), [
    (57, 31, False, "+84%"), (9, 0, False, "new"), (4, None, False, "new"), (0, 0, False, "no change"),
    (None, 3, False, "n/a"), (63.3, 67.5, True, "-4.2 pp"), (63.3, None, True, "n/a"),
])
def test_change_between(cur: object, prev: object, rate: bool, expected: str) -> None:
    assert EN.change_between(cur, prev, rate=rate) == expected


def test_moment_uses_the_report_timezone() -> None:
    assert EN.moment(datetime(2026, 11, 29, 19, 17, tzinfo=timezone.utc), "EEE d MMM HH:mm") == "Sun 29 Nov 20:17"
    assert EN.moment("2026-11-29T19:17:00", "HH:mm") == "20:17"  # naive = UTC


def test_unknown_locale_is_a_render_error() -> None:
    with pytest.raises(RenderError, match="unknown locale 'xx-YY'"):
        Formatter("xx-YY")


@pytest.mark.parametrize(("audience", "expected"), [
    ("executive", "Conversations rose 12% to 2,480; resolution fell 2.9 pp to 61.0%; the error rate fell 1.5 pp to 2.2%."),
    # the notable move among the engineer's cards (conversations) leads, then the usual ones
    ("engineering", "Conversations rose 12% to 2,480; p95 latency rose 2.3% to 2.16 s; "
                    "the error rate fell 1.5 pp to 2.2%."),
])
def test_opening_sentence_is_written_from_the_data(audience: str, expected: str) -> None:
    data = make_report(audience)
    assert opening_sentence(data, EN, audience) == expected


def test_opening_sentence_wording_for_flat_new_and_empty() -> None:
    data = make_report()
    metrics = dict(data.metrics)
    metrics["conversations"] = metric("conversations", 2210, 2210)
    metrics["resolution_rate"] = metric("resolution_rate", 61.0, None)
    metrics["error_rate"] = metric("error_rate", 2.5, None)
    sentence = opening_sentence(replace(data, metrics=metrics), EN, "executive")
    assert sentence == ("Conversations held at 2,210; resolution came to 61.0% (no earlier figure); "
                        "the error rate came to 2.5% (no earlier figure).")
    empty = make_report(zero=True)
    assert opening_sentence(empty, EN, "executive") == "No conversations this week, against 2,210 the week before."


def test_a_slight_change_that_is_not_notable_is_steady_in_the_opening() -> None:
    """Found by a new user: the engineering report opened with "tokens per conversation rose 0.1%"."""
    data = make_report("engineering")
    metrics = dict(data.metrics)
    metrics["p95_latency_ms"] = metric("p95_latency_ms", 2000.0, 1990.0, notable=False)  # +0.5%
    metrics["error_rate"] = metric("error_rate", 2.3, 2.0, notable=None)  # +0.3 pp, too few to judge
    metrics["tokens_per_conversation"] = metric("tokens_per_conversation", 1010, 1000, notable=True)  # +1%, notable
    metrics["conversations"] = metric("conversations", 2480, 2470, notable=False)
    sentence = opening_sentence(replace(data, metrics=metrics), EN, "engineering")
    # the notable move leads (a reader review: noise came first and the notable move third)
    assert sentence == ("Tokens per conversation rose 1.0% to 1,010; p95 latency held steady at 2.00 s; "
                        "the error rate held steady at 2.3%.")
    metrics["p95_latency_ms"] = metric("p95_latency_ms", 2000.0, 1960.0, notable=False)  # +2%: said, not notable
    assert "; p95 latency rose 2.0% to 2.00 s;" in opening_sentence(replace(data, metrics=metrics), EN, "engineering")


def test_a_coloured_untested_move_leads_the_opening_as_a_notable_one_does() -> None:
    """Found in a reader review of the demo: the engineering opening named errors (+36%), the error rate
    (+1.5 pp) and tokens per conversation (+1.2%), all notable, and not p95 latency, up 52% (2.37 s to 3.61 s)
    on a red card: latency percentiles have no test, and only notable moves led. A move coloured without a test
    (a latency percentile past 5%) now leads as well, in the cards' order."""
    data = make_report("engineering")
    metrics = dict(data.metrics)
    metrics["conversations"] = metric("conversations", 2378, 2374, notable=False)
    metrics["errors"] = metric("errors", 137, 101, notable=True)
    metrics["error_rate"] = metric("error_rate", 5.8, 4.3, notable=True)
    metrics["p95_latency_ms"] = metric("p95_latency_ms", 3610.0, 2370.0)  # +52%: no test, coloured from 5%
    metrics["tokens_per_conversation"] = metric("tokens_per_conversation", 2597, 2567, notable=True)
    sentence = opening_sentence(replace(data, metrics=metrics), EN, "engineering")
    assert sentence == ("Errors rose 36% to 137; the error rate rose 1.5 pp to 5.8%; "
                        "p95 latency rose 52% to 3.61 s.")
    metrics["p95_latency_ms"] = metric("p95_latency_ms", 2440.0, 2370.0)  # +3.0%: grey, no lead
    sentence = opening_sentence(replace(data, metrics=metrics), EN, "engineering")
    assert sentence == ("Errors rose 36% to 137; the error rate rose 1.5 pp to 5.8%; "
                        "tokens per conversation rose 1.2% to 2,597.")


def test_context_marks_tone_and_notable() -> None:
    ctx, charts = build_context(make_report())
    cards = {card["key"]: card for card in ctx["kpis"]}
    assert cards["resolution_rate"]["tone"] == "bad" and cards["resolution_rate"]["notable"] is True
    # good, but within the usual variation: grey, with its arrow (a reader review: red on noise)
    assert cards["error_rate"]["tone"] == "neutral" and cards["error_rate"]["notable"] is False
    assert cards["error_rate"]["arrow"]
    assert cards["conversations"]["tone"] == "neutral"
    assert cards["conversations"]["arrow"] == "▲"
    assert {c.name for c in charts} >= {"spark-conversations", "spark-resolution-rate"}
    assert "daily" not in {c.name for c in charts}  # the executive report shows no daily chart
    _, charts = build_context(make_report("engineering"))
    assert "daily" in {c.name for c in charts}
    assert all(c.alt for c in charts)


def test_savings_hint_without_human_cost() -> None:
    ctx, _ = build_context(make_report(human_cost=None))
    assert ctx["savings"] is None
    assert "human_cost_per_conversation" in ctx["savings_hint"]


def test_the_daily_chart_shows_both_series_whole():
    """Found in a rendering audit: with 4 error events per conversation the axis was scaled to the
    conversations, every red bar was cut off at the top and covered its blue bar whole."""
    from matplotlib.figure import Figure

    from agentdigest.render.charts import Chart, _daily

    fig = Figure()
    _daily(fig, Chart("daily", "daily", "alt", 560, 170, values=(9.0, 3.0, 5.0), labels=("a", "b", "c"),
                      secondary=(32.0, 12.0, 0.0)))
    ax, right = fig.axes  # conversations on the left axis, error events on their own right axis
    assert ax.get_ylim()[1] >= 9 and right.get_ylim()[1] >= 32  # neither series is cut off
    (conversations,), (errors,) = ax.containers, right.containers
    assert all(e.get_width() < c.get_width() for c, e in zip(conversations, errors))  # blue shows around red
    # A reader review: 36 errors a day on a 0-450 conversations axis were a red sliver. On their own axis the
    # day with the most errors reaches most of the chart's height, and the right ticks sit on the left's grid.
    fig = Figure()
    _daily(fig, Chart("daily", "daily", "alt", 560, 170, values=(450.0, 420.0, 380.0), labels=("a", "b", "c"),
                      secondary=(36.0, 12.0, 20.0)))
    ax, right = fig.axes
    assert 36 / right.get_ylim()[1] > 0.5 > 36 / ax.get_ylim()[1] * 5
    assert len(ax.get_yticks()) == len(right.get_yticks())


def test_a_move_shown_as_no_change_has_no_arrow_and_no_colour() -> None:
    """Found in a rendering audit: cost moved -0.03% and its card read "▼ no change" in green."""
    from agentdigest.render.context import kpi

    card = kpi(metric("cost_usd", 99.97, 100.0), EN)
    assert card["change"] == "no change" and card["arrow"] == "" and card["tone"] == "neutral"
    moved = kpi(replace(metric("cost_usd", 90.0, 100.0), notable=True), EN)
    assert moved["change"] == "-10%" and moved["arrow"] == "▼" and moved["tone"] == "good"
    # untested (too few periods to judge a count): shown with its arrow, not coloured (a reader re-check)
    assert kpi(metric("cost_usd", 90.0, 100.0), EN)["tone"] == "neutral"


def test_on_incomplete_data_the_opening_leaves_totals_out() -> None:
    """Found in a Slack audit: at 10.5% completeness the message led with "Conversations fell 89% to 262;
    ... errors fell 83% to 15", right under the banner saying the figures are understated."""
    data = make_report(warning=True)
    assert data.quality.warning
    sentence = opening_sentence(data, EN, "executive")
    assert "onversations" not in sentence and "errors" not in sentence and sentence.startswith("Resolution ")
    complete = opening_sentence(make_report(), EN, "executive")
    assert complete.startswith("Conversations ")
    only_totals = replace(data, metrics={k: m for k, m in data.metrics.items() if k not in ("resolution_rate", "error_rate")})
    assert opening_sentence(only_totals, EN, "executive") == (
        f"{EN.count(data.metrics['conversations'].value)} conversations on incomplete data.")


def test_a_sparkline_draws_a_tiny_move_as_tiny() -> None:
    """Found in a rendering audit: 298 -> 302 -> 300 filled the whole height, a spike to the eye."""
    from matplotlib.figure import Figure

    from agentdigest.render.charts import Chart, _spark

    def height(values: tuple[float, ...]) -> float:
        fig = Figure()
        _spark(fig, Chart("s", "spark", "alt", 90, 24, values=values))
        ys = fig.artists[0].get_ydata()
        return max(ys) - min(ys)

    assert height((298.0, 302.0, 300.0)) < 0.1
    assert height((100.0, 200.0, 150.0)) == pytest.approx(0.72)
    assert height((0.0, 0.0)) == 0 and height((5.0, 5.0)) == 0


def test_failures_name_no_agent_when_the_events_have_no_agent_column() -> None:
    """Found in a rendering audit: without an agent_id column every failure read "agent (none)"."""
    from agentdigest.render.limits import Limits
    from agentdigest.render.sections import failures

    data = make_report("engineering")
    assert all(f["agent"] for f in failures(data, EN, Limits()))
    assert all(f["agent"] == "" for f in failures(replace(data, by_agent=None), EN, Limits()))


_ID_PART = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=8)


@settings(max_examples=300, deadline=None)
@given(prefix=st.text(alphabet="abcdefghijklmnopqrstuvwxyz-", min_size=0, max_size=40),
       middles=st.lists(_ID_PART, min_size=2, max_size=6, unique=True),
       suffix=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=0, max_size=40),
       limit=st.integers(min_value=20, max_value=60))
def test_ids_that_differ_anywhere_keep_apart_when_cut(prefix: str, middles: list[str], suffix: str, limit: int) -> None:
    """A rendering audit left ids that differ only in the middle (``...-us-east-1-prod`` and
    ``...-eu-west-1-prod``) reading the same once cut; every label fits and different ids stay apart."""
    from agentdigest.render.clipping import cut_apart

    ids = [f"{prefix}{m}{suffix}" for m in middles]
    labels = cut_apart(ids, limit)
    assert all(len(label) <= limit for label in labels)
    assert all(label == text for label, text in zip(labels, ids) if len(text) <= limit)
    assert len(set(labels)) == len(set(ids)), list(zip(ids, labels))


@settings(max_examples=300, deadline=None)
@given(prefix=st.text(alphabet="abcdefghijklmnopqrstuvwxyz-", min_size=0, max_size=30),
       firsts=st.lists(_ID_PART, min_size=1, max_size=4, unique=True),
       middle=st.text(alphabet="abcdefghijklmnopqrstuvwxyz-", min_size=0, max_size=20),
       seconds=st.lists(_ID_PART, min_size=1, max_size=4, unique=True),
       suffix=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=0, max_size=30),
       limit=st.integers(min_value=14, max_value=60), data=st.data())
def test_ids_that_differ_in_two_places_keep_apart_when_cut(prefix, firsts, middle, seconds, suffix, limit, data) -> None:
    """Left as a known gap: ids that differ in two places (region and version) could still cut to one label
    in the text part's narrow agent column, where each was cut apart only from its first-cut twins."""
    from agentdigest.render.clipping import cut_apart

    pairs = data.draw(st.lists(st.tuples(st.sampled_from(firsts), st.sampled_from(seconds)), min_size=2, max_size=6,
                               unique=True))
    ids = [f"{prefix}{a}{middle}{b}{suffix}" for a, b in pairs]
    labels = cut_apart(ids, limit)
    assert all(len(label) <= limit for label in labels)
    assert len(set(labels)) == len(set(ids)), list(zip(ids, labels))


@pytest.mark.parametrize("limit", [12, 14, 16, 20, 24, 30])
def test_fleet_ids_that_differ_in_region_env_and_version_keep_apart(limit) -> None:
    """The shape the known gap was found with: ids of one fleet, differing in two or three places."""
    import random

    from agentdigest.render.clipping import cut_apart

    pick = random.Random(limit)
    for _ in range(300):
        ids = sorted({f"customer-support-{pick.choice(['us-east-1', 'eu-west-1', 'ap-south-1', 'us-west-2'])}-"
                      f"{pick.choice(['prod', 'staging', 'canary'])}-{pick.choice(['v5', 'v6', 'v10'])}-"
                      f"{pick.choice(['bot', 'agent'])}" for _ in range(pick.randint(2, 6))})
        labels = cut_apart(ids, limit)
        assert all(len(label) <= limit for label in labels)
        assert len(set(labels)) == len(ids), list(zip(ids, labels))


def test_cut_ids_show_where_they_part_in_every_artifact_table() -> None:
    from agentdigest.render.clipping import names

    ids = [f"customer-support-assistant-{region}-production-canary-green-v2"
           for region in ("us-east-1", "eu-west-1", "ap-south-1")]
    labels = names([*ids, None], 40)
    assert labels[-1] == "(none)"
    assert len(set(labels[:3])) == 3 and all(len(label) <= 40 for label in labels)
    assert "us-east" in labels[0] and "eu-west" in labels[1] and "ap-sou" in labels[2]
    assert labels[0].startswith("customer") and labels[0].endswith("v2")


@pytest.mark.parametrize(("good", "notable", "change_pct", "tone"), [
    (False, True, -0.5, "bad"),      # notable: coloured however small
    (True, False, 40.0, "neutral"),  # within the usual variation: grey however large
    (False, None, 51.0, "bad"),      # no test for p95 latency: coloured from 5%
    (False, None, 3.0, "neutral"),   # ... and grey under it
    (True, None, 0.4, "neutral"),    # not tested and slight: grey
    (None, True, 12.0, "neutral"),   # no better direction, or not judged (incomplete data)
])
def test_a_badge_is_coloured_only_when_the_move_is_notable_or_untested(
        good: bool | None, notable: bool | None, change_pct: float, tone: str) -> None:
    """A reader review: five of six headline badges were red on a week with one notable change."""
    from agentdigest.render.context import kpi

    m = replace(metric("p95_latency_ms", 1500.0 * (1 + change_pct / 100), 1500.0, "ms"), good=good, notable=notable)
    assert kpi(m, EN)["tone"] == tone


def test_an_agents_rates_are_coloured_when_its_own_test_says_notable() -> None:
    """The by-agent table showed no error-rate change (billing-bot went from 3.8% to 14.2% unseen) and
    coloured every resolution move; each agent's rates are now tested against its own previous period."""
    from agentdigest.render.sections import breakdowns
    from agentdigest.render.limits import EMAIL_LIMITS

    rows = ({"agent_id": "billing-bot", "conversations": 578, "resolved_conversations": 369, "error_conversations": 82,
             "resolution_rate": 369 / 578 * 100, "error_rate": 82 / 578 * 100, "previous_conversations": 568,
             "previous_resolved_conversations": 394, "previous_error_conversations": 22,
             "previous_resolution_rate": 394 / 568 * 100, "previous_error_rate": 22 / 568 * 100},
            {"agent_id": "tiny-bot", "conversations": 12, "resolved_conversations": 3, "error_conversations": 6,
             "resolution_rate": 25.0, "error_rate": 50.0, "previous_conversations": 10,
             "previous_resolved_conversations": 9, "previous_error_conversations": 0,
             "previous_resolution_rate": 90.0, "previous_error_rate": 0.0},
            {"agent_id": "steady-bot", "conversations": 900, "resolved_conversations": 590, "error_conversations": 41,
             "resolution_rate": 590 / 900 * 100, "error_rate": 41 / 900 * 100, "previous_conversations": 950,
             "previous_resolved_conversations": 640, "previous_error_conversations": 40,
             "previous_resolution_rate": 640 / 950 * 100, "previous_error_rate": 40 / 950 * 100})
    data = replace(make_report("engineering"), by_agent=rows)
    agents = {r["agent"]: r for r in breakdowns(data, EN, EMAIL_LIMITS)["by_agent"]["rows"]}
    # billing-bot: errors 3.9% -> 14.2% (z = 6.1) and resolution 69.4% -> 63.8% (z = -2.0, p = 0.047)
    assert agents["billing-bot"]["error_rate_change"] == "+10.3 pp" and agents["billing-bot"]["error_rate_tone"] == "bad"
    assert agents["billing-bot"]["resolution_tone"] == "bad"
    # tiny-bot: big moves on 12 conversations cannot be tested: grey (a re-check: rows of 17 conversations
    # were a wall of colour)
    assert agents["tiny-bot"]["error_rate_tone"] == "neutral" and agents["tiny-bot"]["resolution_tone"] == "neutral"
    # steady-bot: 65.6% -> 67.4% and 4.6% -> 4.2% are within chance (p = 0.41, 0.72): grey
    assert agents["steady-bot"]["resolution_tone"] == "neutral" and agents["steady-bot"]["error_rate_tone"] == "neutral"


def test_a_previous_period_that_is_the_first_with_data_is_not_judged_against() -> None:
    """Found in a reader review: October's report said "Conversations rose 165%" in green against a September
    whose data began on the 19th, and listed March to August as 0 conversations and $0.00."""
    from agentdigest.render.context import series

    data = make_report("executive")
    empty = {k: (0 if k in ("conversations", "resolved_conversations", "escalated_conversations", "errors") else None)
             for k in data.trend[0] if k not in ("key", "start", "end")}
    trend = tuple({**row, **empty} for row in data.trend[:6]) + data.trend[6:]
    # as compute hands them over: totals unjudged (tests/test_quality.py checks compute does)
    metrics = {k: replace(m, judged=False, notable=None) if m.is_total else m for k, m in data.metrics.items()}
    data = replace(data, trend=trend, metrics=metrics)
    ctx, _ = build_context(data)
    cards = {card["key"]: card for card in ctx["kpis"]}
    assert cards["conversations"]["tone"] == "neutral" and not cards["conversations"]["notable"]
    assert cards["conversations"]["arrow"] == "▲"  # the move is still shown
    assert not ctx["opening"].startswith("Conversations")  # totals are not the news
    assert [row["conversations"] for row in ctx["trend"]] == ["2,210", "2,480"]  # no "0" weeks before the data
    assert series(data, "conversations")[:6] == [None] * 6
    assert ctx["volume"]["window"] is None  # no "+12% over 2 weeks" from a partial first week


@pytest.mark.parametrize(("count", "previous", "tone"), [
    (2, 1, "neutral"),    # +100%, but 1 -> 2 is chance (a reader re-check)
    (42, 24, "bad"),      # |42 - 24| / sqrt(66) = 2.2
    (30, 24, "neutral"),  # 0.8
    (10, 30, "good"),     # 3.2
    (36, 24, "neutral"),  # |36 - 24| / sqrt(60) = 12 / 7.746 = 1.55: under 1.96, though over 1
])
def test_an_error_type_is_coloured_when_its_counts_differ_beyond_chance(count: int, previous: int, tone: str) -> None:
    from agentdigest.render.limits import EMAIL_LIMITS
    from agentdigest.render.sections import breakdowns

    data = replace(make_report("engineering"), errors_by_type=({"error_type": "tool_timeout", "count": count,
                                                                 "previous": previous},))
    assert breakdowns(data, EN, EMAIL_LIMITS)["errors_by_type"]["rows"][0]["tone"] == tone


@pytest.mark.parametrize(("judged", "tones"), [
    # the fixture's types: 57 vs 31 (|26| / sqrt(88) = 2.8, more errors: red), 22 vs 40 (2.3, fewer: green),
    # 9 vs 0 (3.0, red), 4 vs unknown (grey)
    (True, ["bad", "good", "bad", "neutral"]),
    # the errors total not judged (a running period, incomplete data, the period the data begin in): the
    # total's card is grey, so its parts are too
    (False, ["neutral"] * 4),
], ids=["total-judged", "total-not-judged"])
def test_error_types_are_coloured_only_when_the_errors_total_is(judged: bool, tones: list[str]) -> None:
    import re

    from agentdigest.render.html import render_template
    from agentdigest.render.limits import EMAIL_LIMITS, PRINT_LIMITS

    data = make_report("engineering")
    errors = replace(data.metrics["errors"], notable=True if judged else None, judged=judged)
    data = replace(data, metrics={**data.metrics, "errors": errors})
    for limits, target in ((EMAIL_LIMITS, "email"), (PRINT_LIMITS, "print")):  # the email, and the PDF's page
        ctx, _ = build_context(data, limits)
        assert ctx["kpis"][1]["key"] == "errors" and (ctx["kpis"][1]["tone"] != "neutral") is judged
        assert [row["tone"] for row in ctx["errors_by_type"]["rows"]] == tones, target
        html = render_template("engineering", {**ctx, "images": {}}, target=target)
        table = html[html.index(">Errors by type<"):]
        table = table[:table.index("</table>")]
        assert re.findall(r'class="badge badge-(\w+)', table) == tones, target


@pytest.mark.parametrize(("p95", "previous", "tone"), [
    # README: an agent's p95 latency is coloured from a 10% move (no test applies to it); lower is better
    (1070.0, 1000.0, "neutral"),  # (1070 - 1000) / 1000 = +7%: under 10%, grey
    (1120.0, 1000.0, "bad"),      # +12%: slower, red
    (930.0, 1000.0, "neutral"),   # -7%
    (880.0, 1000.0, "good"),      # -12%: faster, green
])
def test_an_agents_p95_latency_is_coloured_from_a_ten_percent_move(p95: float, previous: float, tone: str) -> None:
    from agentdigest.render.limits import EMAIL_LIMITS
    from agentdigest.render.sections import breakdowns

    row = {"agent_id": "support-bot", "conversations": 400, "previous_conversations": 400,
           "p95_latency_ms": p95, "previous_p95_latency_ms": previous}
    data = replace(make_report("engineering"), by_agent=(row,))
    assert breakdowns(data, EN, EMAIL_LIMITS)["by_agent"]["rows"][0]["p95_tone"] == tone


def test_failure_examples_keep_long_ids_apart() -> None:
    """Found in a re-check: four error types that differ only in the middle read the same in the failure
    examples, where the tables kept them apart."""
    from agentdigest.render.limits import EMAIL_LIMITS
    from agentdigest.render.sections import failures

    data = make_report("engineering")
    kinds = [f"integration.payments.gateway.{part}.upstream.response.exception" for part in ("timeout", "refused", "reset")]
    rows = tuple({**data.failure_examples[0], "error_type": kind, "event_type": "error"} for kind in kinds)
    shown = [f["type"] for f in failures(replace(data, failure_examples=rows), EN, EMAIL_LIMITS)]
    assert len(set(shown)) == 3 and all(len(t) <= 40 for t in shown), shown

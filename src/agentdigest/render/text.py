"""The plain-text report (``report.txt``, also the email's text/plain part), readable on its own.

Same context, same sections as the HTML, laid out in aligned columns within 78 characters.
A custom template folder may supply ``report.txt.j2`` (rendered without HTML escaping).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from jinja2 import TemplateError
from rich.cells import cell_len, get_character_cell_size

from .format import count_in
from .html import environment, rendered_something, template_failure, template_source
from .clipping import ELLIPSIS, ISOLATE, cut_apart, cut_middle, isolated

WIDTH = 78
#: Below this many cells a table's name column is given lines of its own (see :func:`table`).
NAME_CELLS = 16
#: Below this many cells a name column whose names are cut in several places (to tell them apart) is given
#: lines of its own: "cust…t-us-east-…tant" reads in 20 cells, "prod-e…00-a…ij" in 16 does not.
PARTED_CELLS = 20
CUSTOM_TEXT = "report.txt.j2"


_LTR = "\u200e"


def _chop(text: str, cells: int, from_end: bool = False) -> str:
    """The longest start (or end) of ``text`` that fits in ``cells`` terminal cells."""
    out, used = [], 0
    for ch in reversed(text) if from_end else text:
        used += get_character_cell_size(ch)
        if used > cells:
            break
        out.append(ch)
    return "".join(reversed(out) if from_end else out)


def _cell(text: str, width: int, right: bool) -> str:
    """``text`` in ``width`` cells (a CJK character or an emoji takes two), cut in the middle when too
    long (names that differ at the end stay apart); text with right-to-left letters is isolated, so a mail
    client's bidi algorithm cannot pull the next columns' numbers into it (found in a rendering audit:
    rows after an Arabic agent name read backwards)."""
    text = cut_middle(text, width, _chop, cell_len)
    pad = " " * max(0, width - cell_len(text))
    text = isolated(text)
    return pad + text if right else text + pad


def _line(cells: list[str]) -> str:
    """A table row; a left-to-right mark first when it holds right-to-left text, so the row reads left to right."""
    line = ("  " + "  ".join(cells)).rstrip()
    return _LTR + line if ISOLATE in line else line


def table(columns: Sequence[tuple[str, str, bool]], rows: Sequence[dict[str, Any]], more: int = 0,
          more_label: str = "more", absent: Sequence[str] = (),
          where: str = "more in the attached PDF report", count: Callable[[int], str] = "{:,}".format) -> list[str]:
    """Aligned columns: (heading, key, right-aligned?). The first column takes the spare width;
    columns in ``absent`` (no data in the source) are left out. ``count`` writes the number of rows left out."""
    columns = [c for c in columns if c[1] not in absent]
    widths = [max([cell_len(h)] + [cell_len(str(r[k])) for r in rows]) for h, k, _ in columns]
    fixed = sum(widths[1:]) + 2 * (len(columns) - 1) + 2
    natural, widths[0] = widths[0], max(8, min(widths[0], WIDTH - fixed))
    # Too narrow a name column is unreadable (a rendering audit: the by-agent table gave 150 long agent
    # names 9 cells, "e…-000@…3", "…t 2 💳…"): each name then has a line of its own above its figures.
    stacked = widths[0] < min(natural, NAME_CELLS)
    lines = [_line([_cell(h, w, right) for (h, _, right), w in zip(columns, widths)])]
    lines.append(_line(["-" * w for w in widths]))
    # the first column holds names: two different ones cut to the same label show where they part
    texts = [str(row[columns[0][1]]) for row in rows]
    firsts = cut_apart(texts, WIDTH - 2 if stacked else widths[0], _chop, cell_len)
    # Names told apart only by cuts in several places need PARTED_CELLS to be read (a cardinality audit:
    # 300-character ids sharing a long start read "prod-e…00-a…ij" in 16 cells): they get lines of their own too.
    if not stacked and widths[0] < PARTED_CELLS and any(
            label.count(ELLIPSIS) > text.count(ELLIPSIS) + 1 for text, label in zip(texts, firsts)):
        stacked = True
        firsts = cut_apart(texts, WIDTH - 2, _chop, cell_len)
    for row, first in zip(rows, firsts):
        cells = [str(row[k]) for _, k, _ in columns]
        if stacked:
            lines.append(_line([_cell(first, WIDTH - 2, False)]))
            first = ""
        cells[0] = first
        lines.append(_line([_cell(c, w, right) for c, (_, _, right), w in zip(cells, columns, widths)]))
    if more:
        lines.append(f"  and {count(more)} {more_label} ({where})")
    return lines


def heading(title: str) -> list[str]:
    return ["", title.upper(), "-" * min(WIDTH, len(title))]


def wrap(text: str, indent: str = "", first: str | None = None) -> list[str]:
    """``text`` wrapped to the page width in terminal cells, as the tables count them (a CJK character or an
    emoji takes two: textwrap counted characters, so a Japanese report's footer ran to 84 cells); ``first``
    replaces ``indent`` on the first line. As textwrap did, it breaks only at ASCII whitespace, keeps the
    spaces inside a line as they are, and cuts a word longer than a line."""
    lines: list[str] = []
    line, empty, space = (indent if first is None else first), True, ""
    for chunk in re.split(r"([\t\n\x0b\x0c\r ]+)", text):
        if not chunk.strip("\t\n\x0b\x0c\r "):
            space = " " * len(chunk) if not empty else ""
            continue
        while chunk:
            if cell_len(space + chunk) <= WIDTH - cell_len(line):
                line, empty, space, chunk = line + space + chunk, False, "", ""
                continue
            if empty:  # longer than a whole line: as much as fits, the rest on the next
                part = _chop(chunk, WIDTH - cell_len(line)) or chunk[0]
                line, chunk = line + part, chunk[len(part):]
            lines.append(line)
            line, empty, space = indent, True, ""
    if not empty:
        lines.append(line)
    return lines or [indent.rstrip()]


def badge(card: dict[str, Any]) -> str:
    arrow = f"{card['arrow']} " if card.get("arrow") else ""
    return f"{arrow}{card['change']}" + (" [notable]" if card.get("notable") else "")


def marked(row: dict[str, Any], *changes: str) -> dict[str, Any]:
    """``row`` with each of its ``changes`` keys (``error_rate_change``) led by the arrow of its tone when coloured
    (``error_rate_arrow``; ``arrow`` for a row's ``change``), as the HTML's badges are: found in a reader review,
    the text's tables did not tell a change that passed its test ("▲ +21%" in red) from one within chance.
    No space after the arrow ("▲+21%"): with one, the demo's by-agent table (three such columns) left its
    names 12 cells, and "onboarding-bot" was moved to a line of its own above its figures, as every name then."""
    out = dict(row)
    for key in changes:
        arrow = row.get(key.replace("change", "arrow"), "")
        out[key] = f"{arrow}{row[key]}" if arrow else row[key]
    return out


def legend(ctx: dict[str, Any]) -> str:
    """What [notable] and a table's arrow mean, as the HTML's legend (``_macros.legend``) says, of what the
    report shows (no latency in the executive report)."""
    tables = ctx["report"]["audience"] == "engineering" and any(
        (ctx.get(key) or {}).get("rows") for key in ("errors_by_type", "by_agent"))
    agents = tables and (ctx.get("by_agent") or {}).get("rows")
    latency = ctx["report"]["audience"] != "executive"  # the executive report shows no latency figure
    return ("Changes marked [notable] passed a significance check"
            + ("; in the error-type and agent tables, a change with an arrow (▲ or ▼) passed its own test" if tables else "")
            + (". Latency percentiles have no test" if latency else "")
            + (" (an agent's p95 has an arrow from a 10% move)" if agents else "")
            + ("; other" if latency else ". Other") + " changes are within chance or had too little data to test.")


def kpi_lines(cards: Sequence[dict[str, Any]]) -> list[str]:
    rows = [{"label": c["label"], "value": c["value"], "change": badge(c), "previous": c["previous"]} for c in cards]
    return table([("Metric", "label", False), ("Value", "value", True), ("Change", "change", False),
                  ("Previous", "previous", True)], rows)


def banner_lines(banner: dict[str, Any] | None) -> list[str]:
    if not banner:
        return []
    head, colon, rest = banner["title"].partition(":")  # "DATA INCOMPLETE: 81.4% of expected events"
    lines = ["!" * WIDTH, f"!! {head.upper()}{colon}{rest}", "!!",
             *wrap(banner["text"], "!! ")]
    if banner["gaps"]:
        gaps = "; ".join(banner["gaps"]) + (f"; and {banner['more_gaps']} more" if banner["more_gaps"] else "")
        lines += wrap(f"Gaps with no events ({banner['gap_count']}): {gaps}.", "!! ")
    return lines + ["!" * WIDTH]


def executive(ctx: dict[str, Any]) -> list[str]:
    out: list[str] = []
    if ctx["kpis"]:
        out += heading("Headline figures") + kpi_lines(ctx["kpis"])
    if v := ctx["volume"]:
        out += heading("Volume")
        out += wrap(f"{v['value']} {v['noun']} this {v['word']} ({badge(v)}; previous {v['previous']})."
                    + (f" {v['window'][0].upper()}{v['window'][1:]}." if v["window"] else ""))
    out += heading("Estimated savings")
    if s := ctx["savings"]:
        out += wrap(f"{s['value']} ({badge(s)}; previous {s['previous']}). {s['explanation']}")
    else:
        out += wrap(ctx["savings_hint"])
    if len(ctx["trend"]) > 1:
        out += heading(f"Last {len(ctx['trend'])} {ctx['report']['period_word']}s")
        # Short headings leave the dates their width: a date cut in the middle is a wrong date (a re-check:
        # "10月26日…1月1日" read as 26 Oct to 1 Jan); the incomplete period's mark is a footnote's "*".
        # Plain text has no wrapping to guard against: the dates' no-break spaces (for HTML and PDF) are spaces.
        rows = [{**row, "period": row["period"].replace("\u00a0", " ")} for row in ctx["trend"]]
        out += table([("Period", "period", False), ("Conv.", "conversations", True),
                      ("Resol.", "resolution", True), ("Contain.", "containment", True),
                      ("Err. rate", "error_rate", True), ("Cost", "cost", True)], rows, absent=ctx["absent"])
        if ctx.get("trend_note"):
            out.append(f"  {ctx['trend_note']}")
    if q := ctx["quality"]:
        out += heading("Data quality")
        out += wrap(q["summary"]["completeness"] + " " + q["summary"]["invalid"])
    return out


def engineering(ctx: dict[str, Any]) -> list[str]:
    out: list[str] = []
    word = ctx["report"]["period_word"]
    count = partial(count_in, ctx)  # the rows a table leaves out, in the report's locale
    if ctx["kpis"]:
        out += heading("Headline figures") + kpi_lines(ctx["kpis"])
    if ctx["latency"]:
        out += heading("Latency") + kpi_lines(ctx["latency"])
    if ctx["daily"]:
        out += heading("Day by day")
        days = [{**row, "date": row["date"].replace("\u00a0", " ")} for row in ctx["daily"]]  # as the trend's
        out += table([("Day", "date", False), ("Conv.", "conversations", True), ("Resolution", "resolution", True),
                      ("Errors", "errors", True), ("Err. rate", "error_rate", True), ("Tokens", "tokens", True),
                      ("Cost", "cost", True)], days, absent=ctx["absent"])
    if (e := ctx["errors_by_type"]) is not None:
        out += heading("Errors by type")
        out += table([("Error type", "type", False), ("Count", "count", True), ("Previous", "previous", True),
                      ("Change", "change", True)], [marked(r, "change") for r in e["rows"]], e["more"], "more error types", where=e["where"],
                     count=count) if e["rows"] \
            else [f"No errors this {word}."]
    if (b := ctx["by_model"]) is not None:
        # "Tokens by model" over a table without tokens (no token_count column) named what it lacks
        out += heading("Tokens by model" if "tokens" not in ctx["absent"] else "By model")
        out += table([("Model", "model", False), ("Conv.", "conversations", True), ("Tokens", "tokens", True),
                      ("Share", "share", True), ("p95", "p95_latency", True), ("Errors", "errors", True),
                      ("Cost", "cost", True)], b["rows"], b["more"], "more models", absent=ctx["absent"],
                     where=b["where"], count=count) \
            if b["rows"] else [f"No model activity this {word}."]
        if b["rows"] and b.get("overlap"):
            out += wrap(b["overlap"])
    if (a := ctx["by_agent"]) is not None:
        out += heading("By agent")
        out += table([("Agent", "agent", False), ("Conv.", "conversations", True), ("Resol.", "resolution", True), ("Chg", "resolution_change", True),
                      ("Err. rate", "error_rate", True), ("Chg", "error_rate_change", True), ("p95", "p95_latency", True),
                      ("Chg", "p95_change", True)],
                     [marked(r, "resolution_change", "error_rate_change", "p95_change") for r in a["rows"]],
                     a["more"], "more agents", absent=ctx["absent"], where=a["where"],
                     count=count) \
            if a["rows"] else [f"No agent activity this {word}."]
    out += heading("Recent failures")
    for f in ctx["failures"]:
        kind = f["kind"] + (f" / {f['type']}" if f["type"] else "")
        agent = f"  agent {f['agent']}" if f["agent"] else ""
        out += wrap(f"{f['time']}  {kind}{agent}  conversation {f['conversation']}", "  ", "- ")
        if f["message"]:
            out += wrap(f["message"], "    ")
    if not ctx["failures"]:
        out.append(f"No error or escalation events this {word}.")
    out += heading("Data quality")
    if q := ctx["quality"]:
        width = max(len(row["label"]) for row in q["rows"]) + 2
        out += [f"  {row['label'] + ':':<{width}} {row['value']}" for row in q["rows"]]
        if q.get("over"):
            out += wrap(q["over"])
        if q["gaps"]:
            out += wrap("Gaps: " + "; ".join(q["gaps"]) + (f"; and {q['more_gaps']} more" if q["more_gaps"] else "") + ".")
    else:
        out.append("Not measured for this report.")
    return out


def render_text(ctx: dict[str, Any], audience: str) -> str:
    """The plain-text report for the audience (a custom folder's report.txt.j2 when it has one)."""
    folder, _ = template_source(audience)
    if folder and (Path(folder) / CUSTOM_TEXT).is_file():
        try:
            out = environment(folder).get_template(CUSTOM_TEXT).render(**ctx, target="text")
        except TemplateError as exc:
            raise template_failure(exc, folder) from None
        return rendered_something(out, folder, CUSTOM_TEXT)
    r = ctx["report"]
    # wrapped as every other line (a reader audit: a 134-character title ran past the 78 columns)
    scope = f" · {r['scope']}" if r.get("scope") else ""
    lines = [*wrap(r["title"]), *wrap(f"{r['span']} ({r['period_key']}) · compared with {r['previous_span']}{scope}"),
             "=" * WIDTH]
    lines += banner_lines(ctx["banner"])
    lines += ["", *wrap(ctx["opening"])]
    lines += engineering(ctx) if r["audience"] == "engineering" else executive(ctx)
    lines += [""]
    if ctx["notes"]:
        lines += wrap("Notes: " + " ".join(ctx["notes"]))
    lines += wrap(legend(ctx))
    lines += wrap(f"{'Latest event ' + r['data_until'] + '. ' if r.get('data_until') else ''}"
                  f"Generated {r['generated_at']} by agentdigest · report {r['id']} · period {r['period_key']} "
                  f"({r['timezone']}).")
    return "\n".join(lines).rstrip() + "\n"

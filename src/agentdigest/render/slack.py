"""The Slack message (``slack.json``): Block Kit built with slack_sdk's models.

Every block is validated by slack_sdk before it is written, and every text is cut to Slack's
limits (150-character header, 3,000-character texts, 2,000 per field, 10 fields per section,
50 blocks). Event text is escaped for mrkdwn (&, <, >), so an agent id cannot become a
link, a mention or markup; plain_text is not escaped, as Slack shows it as it is.
"""

from __future__ import annotations

import json
import re
from typing import Any

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import (
    Block,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from ..errors import RenderError
from .format import NA, count_in
from .clipping import isolated

HEADER_MAX = 150
TEXT_MAX = 3000
FIELD_MAX = 2000
FIELDS_MAX = 10
BLOCKS_MAX = 50
TONE_MARK = {"good": ":large_green_circle:", "bad": ":red_circle:", "neutral": ""}


def escape(text: str) -> str:
    """Slack's mrkdwn escaping: the three characters that start links, mentions and entities."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


#: mrkdwn's code, masked before the other pairs are looked for: markers inside it are not markup
_CODE = re.compile(r"```.+?```|`[^`\n]+`", re.S)
#: a *bold*, _italic_ or ~strike~ pair as Slack reads one: the opener not inside a word and before a
#: non-space, the closer after a non-space and not before a word character, on one line (and without
#: its own marker inside, which also keeps the search linear on a long line of lone markers)
_PAIRS = [re.compile(rf"(?<!\w){m}(?=[^\s{m}])[^\n{m}]*?(?<=\S){m}(?!\w)") for m in (r"\*", "_", "~")]


#: an emoji code as Slack reads one (``:warning:``, ``:+1:``, ``:skin-tone-2:``)
_EMOJI = re.compile(r":[a-z0-9_+'-]+:")


def fit(text: str, limit: int, *, escaped: bool = True, mrkdwn: bool = True) -> str:
    """``text`` escaped (unless already mrkdwn) and cut to ``limit`` characters, never inside an entity or an
    emoji code; for mrkdwn (not plain_text) a pair the cut splits is closed, or left out when nothing of it is left."""
    out = escape(text) if escaped else text
    if len(out) <= limit:
        return out
    pairs = _pairs(text) if mrkdwn else []
    emoji = [m.span() for m in _EMOJI.finditer(text)]
    cut = len(text)
    while True:
        cut = max(0, min(cut, limit) - 1)
        # a code cut short (":large_green_ci…") is shown as typed, not as the emoji (a Slack audit): cut before it
        cut = next((start for start, end in emoji if start < cut < end), cut)
        raw = text[:cut]
        if not escaped:  # mrkdwn escaped already: not "a&l…"
            raw = re.sub(r"&[a-z]*$", "", raw)
        raw = _closed(raw, pairs)
        out = (escape(raw) if escaped else raw) + "…"
        if len(out) <= limit:
            return out


def _pairs(text: str) -> list[tuple[int, int, str]]:
    """The formatting pairs of mrkdwn ``text`` as (start, end, marker), outermost first. Found in a Slack
    review: a cut inside "*bold*" left "*bold tex…", whose "*" Slack shows as it is."""
    pairs = [(m.start(), m.end(), "```" if m.group().startswith("```") else "`") for m in _CODE.finditer(text)]
    masked = _CODE.sub(lambda m: "\0" * len(m.group()), text)
    for pattern in _PAIRS:
        pairs += [(m.start(), m.end(), m.group()[0]) for m in pattern.finditer(masked)]
    return sorted(pairs, key=lambda p: (p[0], -p[1]))


def _closed(prefix: str, pairs: list[tuple[int, int, str]]) -> str:
    """``prefix`` (a cut of the text ``pairs`` were found in) with each pair it opens but does not close
    closed, innermost first; a pair with nothing inside left is dropped, opener and all."""
    cut = len(prefix)
    for start, end, marker in reversed([p for p in pairs if p[0] < cut < p[1]]):
        prefix = prefix[:min(len(prefix), end - len(marker))].rstrip()  # no part of its closer; no "*bold *"
        if len(prefix) <= start + len(marker):
            prefix = prefix[:start]
        else:
            prefix += marker
    return prefix


def kpi_field(card: dict[str, Any]) -> MarkdownTextObject:
    # A coloured circle reads as an alarm: only notable changes get one, the rest are shown plainly.
    mark = TONE_MARK.get(card["tone"], "") if card.get("notable") else ""
    arrow = f"{card['arrow']} " if card.get("arrow") else ""
    notable = " *notable*" if card.get("notable") else ""
    # A figure that is not known has no change to show either: the field read "n/a  n/a".
    change = "" if card["value"] == NA and card["change"] == NA else f"  {arrow}{escape(card['change'])}"
    body = f"*{escape(card['label'])}*\n{escape(card['value'])}{change}{(' ' + mark) if mark else ''}{notable}"

    return MarkdownTextObject(text=fit(body, FIELD_MAX, escaped=False))


def _section(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=fit(text, TEXT_MAX, escaped=False)))


def _fields(cards: list[dict[str, Any]]) -> list[SectionBlock]:
    return [SectionBlock(fields=[kpi_field(c) for c in cards[i:i + FIELDS_MAX]])
            for i in range(0, len(cards), FIELDS_MAX)]


def _executive(ctx: dict[str, Any]) -> list[Block]:
    blocks: list[Block] = []
    if s := ctx["savings"]:
        arrow = f"{s['arrow']} " if s.get("arrow") else ""  # as its card in the email reads: "▲ +13%"
        blocks.append(_section(f"*Estimated savings:* {escape(s['value'])} ({arrow}{escape(s['change'])}). "
                               f"{escape(s['explanation'])}"))
    if (v := ctx["volume"]) and v["window"]:
        blocks.append(_section(f"*Volume:* {escape(v['window'])}."))
    return blocks


def _engineering(ctx: dict[str, Any]) -> list[Block]:
    blocks: list[Block] = []
    if ctx["latency"]:
        blocks.append(SectionBlock(text=MarkdownTextObject(text="*Latency*"),
                                   fields=[kpi_field(c) for c in ctx["latency"][:FIELDS_MAX]]))
        if (q := ctx["quality"]) and q.get("implausible_latency"):  # the figures above, as the quality table says
            blocks.append(_plain(q["implausible_latency"]))
    e = ctx["errors_by_type"]
    if e and e["rows"]:
        lines = [f"• {isolated(r['type'])}  {r['count']} ({_moved_change(r, 'change', tested=True)})" for r in e["rows"][:8]]
        more = len(e["rows"]) - 8 + e["more"]
        blocks.append(_section("*Errors by type*"))
        blocks.append(_plain("\n".join(lines) + (f"\n…and {count_in(ctx, more)} more" if more > 0 else "")))
    if moved := _agents_that_moved(ctx):
        blocks.append(_section("*Agents that moved*"))
        blocks.append(_plain("\n".join(moved)))
    if ctx["failures"]:
        f = ctx["failures"][0]
        kind = f["kind"] + (f" / {f['type']}" if f["type"] else "")
        blocks.append(_section(f"*Failure example* ({escape(f['time'])})"))
        agent = f", agent {isolated(f['agent'])}" if f["agent"] else ""
        blocks.append(_plain(f"{kind}{agent}:\n{f['message'][:300] or '(no message)'}"))
    return blocks


#: by-agent figures whose change can be coloured: (label, value key, change key, tone key)
_AGENT_MOVES = (("error rate", "error_rate", "error_rate_change", "error_rate_tone"),
                ("resolution", "resolution", "resolution_change", "resolution_tone"),
                ("p95", "p95_latency", "p95_change", "p95_tone"))


def _moved_change(row: dict[str, Any], change: str, *, tested: bool) -> str:
    """A table's change as Slack shows it: a coloured one with the arrow of its move, as in the email's tables
    ("▲ +21%"), and "notable" when the colour is a test's (an agent's p95 has none: coloured from a 10% move).
    Found in a reader review: "tool_timeout  57 (+84%)" read the same whether or not the rise passed its test."""
    arrow = row.get(change.replace("change", "arrow"), "")
    return (f"{arrow} {row[change]}" + (", notable" if tested else "")) if arrow else row[change]


def _agents_that_moved(ctx: dict[str, Any]) -> list[str]:
    """One line for each of the first agents whose error rate, resolution or p95 moved enough to be coloured
    (the by-agent table's rule; :func:`.sections._moved`), worse moves first. Found in a reader review: the
    engineering message had no per-agent line, so billing-bot's error rate going from 3.8% to 14.2% was not in
    Slack at all."""
    lines = []
    for row in (ctx.get("by_agent") or {}).get("moved") or []:
        moves = [f"{label} {row[value]} ({_moved_change(row, change, tested=label != 'p95')})"
                 for label, value, change, tone in _AGENT_MOVES if row.get(tone) in ("good", "bad")]
        lines.append(f"• {isolated(row['agent'])}: {', '.join(moves)}")
    return lines


def _plain(text: str) -> SectionBlock:
    """Agent data (error types, agent names, messages) as plain text: mrkdwn has no escape for * _ ~ `,
    so in a mrkdwn block '*urgent*' from a user's message would turn bold."""
    return SectionBlock(text=PlainTextObject(text=fit(text, TEXT_MAX, escaped=False, mrkdwn=False), emoji=False))


def build_blocks(ctx: dict[str, Any]) -> list[Block]:
    r = ctx["report"]
    blocks: list[Block] = [HeaderBlock(text=PlainTextObject(text=fit(r["title"], HEADER_MAX, escaped=False,
                                                                                mrkdwn=False)))]
    if b := ctx["banner"]:
        gaps = "; ".join(b["gaps"]) + (f"; and {b['more_gaps']} more" if b["more_gaps"] else "")
        text = (f":warning: *{escape(b['title'])}.* {escape(b['text'])}"
                + (f"\nGaps with no events ({b['gap_count']}): {escape(gaps)}" if b["gaps"] else ""))
        blocks.append(_section(text))
    blocks.append(_section(escape(ctx["opening"])))
    blocks += _fields(ctx["kpis"])
    blocks += _engineering(ctx) if r["audience"] == "engineering" else _executive(ctx)
    if ctx["notes"]:  # why a figure is missing or not judged, as the other formats say (a reader audit: the
        # week after the data began showed "+926%" uncoloured, with the reason in the email only).
        # plain_text, as the context line: a note quotes the report's agent patterns and a CSV file's path, and
        # in mrkdwn "Only the conversations of billing-*, support-*" set ", support-" in bold (a rendering audit)
        notes = fit("Notes: " + " ".join(ctx["notes"]), TEXT_MAX, escaped=False, mrkdwn=False)
        blocks.append(ContextBlock(elements=[PlainTextObject(text=notes, emoji=False)]))
    blocks.append(DividerBlock())
    q = ctx["quality"]
    completeness = q["rows"][0]["value"] if q else "n/a"
    # No "full report attached to the email": a Slack-only report has no email, and readers cannot reach the archive.
    # plain_text: the scope's agent patterns are shown as written (a Slack audit: in mrkdwn, the scope "agents
    # billing-*, support-*" lost both asterisks and set ", support-" in bold; mrkdwn has no escape for "*")
    context = (f"{r['span']} ({r['period_key']}) · compared with {r['previous_span']} · "
               + (f"{r['scope']} · " if r.get("scope") else "")
               + f"{r['timezone']} · data completeness {completeness}"
               + (f" · latest event {r['data_until']}" if r.get("data_until") else ""))
    blocks.append(ContextBlock(elements=[PlainTextObject(text=fit(context, TEXT_MAX, escaped=False, mrkdwn=False),
                                                         emoji=False)]))
    return blocks[:BLOCKS_MAX]


def render_slack(ctx: dict[str, Any]) -> bytes:
    """The Slack payload as JSON bytes: ``{"text": fallback, "blocks": [...]}``."""
    blocks = build_blocks(ctx)
    try:
        for block in blocks:
            block.validate_json()
    except SlackObjectFormationError as exc:
        raise RenderError(f"Slack message is invalid: {exc}") from None
    r = ctx["report"]
    warning = f"⚠ {ctx['banner']['short']}. " if ctx["banner"] else ""
    fallback = fit(f"{warning}{r['title']} — {r['period_label']}: {ctx['opening']}", TEXT_MAX)
    payload = {"text": fallback, "blocks": [block.to_dict() for block in blocks]}
    return (json.dumps(payload, ensure_ascii=False, indent=2) + "\n").encode()

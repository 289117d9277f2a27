"""A preview of a period that has not ended (run --period <this week> --dry-run)."""

from datetime import datetime, timezone

from agentdigest.compute import compute_report
from agentdigest.config import ReportConfig, SourceConfig
from agentdigest.demo import setup
from agentdigest.periods import parse_period
from agentdigest.render import render_artifacts
from agentdigest.significance import notable_flags
from agentdigest.sources import open_source


def test_a_running_period_is_so_far_and_its_totals_are_not_judged(tmp_path):
    """Found in a new-user audit: a week previewed on Saturday evening read "Conversations fell 9.5% to 391
    [notable]; cost fell 8.7% [notable]" against a whole week, under "23 – 29 Nov 2026", with no sign it
    was partial."""
    now = datetime(2026, 11, 28, 18, tzinfo=timezone.utc)  # Saturday evening of 2026-W48
    setup(tmp_path, now=now, conversations=8_000)
    source = open_source(SourceConfig(url=f"duckdb://{tmp_path / 'events.duckdb'}", table="agent_events"))
    try:
        data = compute_report(source, ReportConfig(id="r", period="week", timezone="UTC", human_cost_per_conversation=4.5),
                              parse_period("week", "2026-W48", "UTC"), now=now, notable=notable_flags)
    finally:
        source.close()
    conversations = data.metrics["conversations"]
    assert conversations.value < conversations.previous  # six days of seven: a fall
    totals = [m for m in data.metrics.values() if m.is_total]
    assert totals and all(m.notable is None and m.good is None for m in totals)
    assert data.metrics["resolution_rate"].notable is not None  # rates compare as usual
    assert any("has not ended" in note for note in data.notes)
    text = render_artifacts(data, formats={"txt"})["report.txt"].decode()
    assert "29 Nov 2026, so far (2026-W48)" in text and "[notable]" not in text.split("Resolution rate")[0]

"""How much of each table a format shows: row caps and text lengths for the email, its steps, the PDF.

The context (context.py) and the sections (sections.py) read them; the email renderer (``render/__init__``)
walks :data:`EMAIL_STEPS` until its HTML fits.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Limits:
    """How many rows of each table a format shows; the rest is counted as "N more"."""

    agents: int = 15
    models: int = 10
    error_types: int = 10
    failures: int = 50
    gaps: int = 6
    message_chars: int = 200
    name_chars: int = 60
    day_table: bool = True  # the email's figures by day under the chart (the chart stays)


EMAIL_LIMITS = Limits()
#: What the email gives up, step by step, until its HTML fits Gmail's limit: first most failure examples
#: (the text part and the PDF keep them), then table rows, last the day-by-day table and long names'
#: middles. Found in an email audit: halving everything alike cut a 40-agent report's agents, models and
#: error types to 3 rows each while keeping 12 failure examples, and a Japanese month report was still
#: 109 KB on the wire after the last halving, so Gmail clipped its data quality section and footer.
EMAIL_STEPS = (
    EMAIL_LIMITS,
    replace(EMAIL_LIMITS, failures=10, message_chars=120),
    Limits(agents=7, models=5, error_types=5, failures=5, gaps=3, message_chars=100),
    Limits(agents=3, models=3, error_types=3, failures=3, gaps=3, message_chars=80),
    Limits(agents=3, models=3, error_types=3, failures=3, gaps=3, message_chars=80, name_chars=30, day_table=False),
)
PRINT_LIMITS = Limits(agents=100, models=50, error_types=50, gaps=24)

"""The report's notes with the agents they quote isolated, as the header's scope isolates them.

compute writes a report of some agents' first note as one string, "Only the conversations of a, b (...)":
a Hebrew name beside an Arabic one made one right-to-left run in it, and the names, the comma and the
parenthesis after them read in the wrong order (found in a rendering audit). The names are the report's
``agents`` setting, so the note is taken apart here, at render time.
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

from ..report import SCOPE_NOTE
from .html import isolate
from .clipping import isolated



def scoped_notes(notes: Sequence[str], agents: Sequence[str] | None) -> tuple[list[str], list[Markup]]:
    """(text, HTML) of ``notes``: in the text each right-to-left agent of the scope note is in Unicode
    isolates (as the text's and Slack's scope line); in the HTML each agent is in a ``<bdi>`` (as the
    header's), the rest escaped. Other notes, or a scope note worded otherwise, are unchanged."""
    text, html = list(notes), [escape(note) for note in notes]
    names = [str(agent) for agent in agents or ()]
    lead = SCOPE_NOTE + ", ".join(names)
    for i, note in enumerate(notes):
        if names and note.startswith(lead) and note[len(lead):len(lead) + 2] == " (":
            rest = note[len(lead):]
            text[i] = SCOPE_NOTE + ", ".join(map(isolated, names)) + rest
            html[i] = escape(SCOPE_NOTE) + Markup(", ").join(map(isolate, names)) + escape(rest)
            break
    return text, html

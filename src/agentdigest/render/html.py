"""HTML from Jinja2 templates: the email body (styles inlined) and the print document for the PDF.

Autoescape is on for every ``.html.j2`` template, built-in or custom, so event text can only
ever appear as text. A custom folder (``audience = "path/to/folder"``) comes first in a
ChoiceLoader: its ``report.html.j2`` is the entry point and any file named like a built-in
(``executive.html.j2``, ``_macros.html.j2``, ``email.css`` ...) replaces that built-in.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import css_inline
from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateError,
    TemplateNotFound,
    pass_context,
)
from markupsafe import Markup, escape

from ..errors import RenderError
from .format import count_in
from .clipping import direction

BUILT_IN = Path(__file__).parent / "templates"
ENTRY = {"executive": "executive.html.j2", "engineering": "engineering.html.j2"}
CUSTOM_ENTRY = "report.html.j2"
PAGE_SIZES = {"a4": "A4", "letter": "Letter"}


def _autoescape(name: str | None) -> bool:
    # Plain-text templates are the only ones rendered without HTML escaping.
    return not (name or "").endswith((".txt.j2", ".txt"))


@lru_cache(maxsize=16)
def environment(folder: str | None = None) -> Environment:
    """The Jinja2 environment for the built-in templates, or a custom folder in front of them."""
    loaders = [FileSystemLoader(folder)] if folder else []
    loaders.append(FileSystemLoader(str(BUILT_IN)))
    env = Environment(loader=ChoiceLoader(loaders), autoescape=_autoescape, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["shown"] = shown_columns
    env.filters["breakable"] = breakable
    env.filters["isolate"] = isolate
    # not "count": Jinja's own is another name of "length", which a custom template may use
    env.filters["as_count"] = pass_context(count_in)
    env.filters["direction"] = lambda value: direction(str(value))
    return env


_UNBROKEN = re.compile(r"[^\W_]{16,}")  # letters and digits of any script
_SEPARATOR = re.compile(r"[_./@:]")


def breakable(value: Any) -> Markup:
    """``value`` escaped, with a ``<wbr>`` after each of ``_ . / @ :`` and every 12 characters of a run of
    16 or more letters and digits (ids such as ``tool_timeout_upstream_gateway``, which a browser breaks
    nowhere). The phone layout keeps words whole, so such an id widened its column until the numbers
    beside it were off the screen (found in a rendering audit); copied, the text is unchanged. Emoji and
    combining marks are never split from their characters."""
    text, out, pos = str(value), [], 0

    def runs(part: str) -> Markup:
        pieces, at = [], 0
        for m in _UNBROKEN.finditer(part):
            run = m.group(0)
            pieces += [escape(part[at:m.start()]), Markup("<wbr>").join(run[i:i + 12] for i in range(0, len(run), 12))]
            at = m.end()
        pieces.append(escape(part[at:]))
        return Markup("").join(pieces)

    for m in _SEPARATOR.finditer(text):
        out += [runs(text[pos:m.end()]), Markup("<wbr>")]
        pos = m.end()
    out.append(runs(text[pos:]))
    return Markup("").join(out)


def isolate(value: Any, wrap: bool = False) -> Markup:
    """Event text (an agent, a model, an error type, an id) escaped in a ``<bdi>``, so Hebrew or Arabic in it
    cannot reorder the dots, ids and numbers beside it (found in a rendering audit: "agent סוכן-2 42" read
    "agent 42 2-סוכן"); ``dir="rtl"`` when it starts right-to-left, for renderers that do not guess a
    ``<bdi>``'s direction (WeasyPrint). ``wrap``: with :func:`breakable`'s break points."""
    text = str(value)
    inner = breakable(text) if wrap else escape(text)
    return Markup('<bdi dir="rtl">' if direction(text) == "rtl" else "<bdi>") + inner + Markup("</bdi>")


def shown_columns(columns: list, absent: Any, widths: list | None = None) -> list:
    """The table columns (or, given ``widths``, their widths) without those whose data the source lacks
    (``absent``: keys such as ``cost``); a column of "n/a" in every row says nothing."""
    keep = [column[1] not in absent for column in columns]
    if widths is not None:
        return [w for w, k in zip(widths, keep) if k]
    return [column for column, k in zip(columns, keep) if k]


class TemplateInputError(RenderError):
    """A custom template failed: the user's input, like a bad config (exit 2)."""

    exit_code = 2


def template_failure(exc: TemplateError, folder: str | None) -> RenderError:
    """One line naming the template file and line that failed; :class:`TemplateInputError` when a custom
    folder is in play (the failing line may be a built-in's, given the custom context or blocks)."""
    where = None
    if getattr(exc, "filename", None):  # a syntax error knows its place
        where = (exc.filename, getattr(exc, "lineno", None))  # type: ignore[attr-defined]
    else:  # a runtime error: Jinja rewrites the traceback's frames to the templates' files and lines
        tb = exc.__traceback__
        while tb is not None:
            name = tb.tb_frame.f_code.co_filename
            if name.endswith((".j2", ".css")):
                where = (name, tb.tb_lineno)
            tb = tb.tb_next
    text = "template error"
    if where:
        name = where[0]
        if folder and name.startswith(folder):
            name = str(Path(name).relative_to(folder))
            name = f"{Path(folder).name}/{name}"
        elif name.startswith(str(BUILT_IN)):
            name = f"built-in {Path(name).name}"
        text += f" in {name}" + (f", line {where[1]}" if where[1] else "")
    return (TemplateInputError if folder else RenderError)(f"{text}: {exc.message}")


def rendered_something(out: str, folder: str, name: str) -> str:
    """``out``, the output of a custom template, unless it is blank: an empty report.html.j2 sent an empty
    email, and archived an empty report, with exit 0 (found in a README audit)."""
    if not out.strip():
        raise TemplateInputError(f"custom template {Path(folder).name}/{name} rendered nothing (an empty report "
                                 f"would be sent); give it content, or extend a built-in template")
    return out


def template_source(audience: str) -> tuple[str | None, str]:
    """(custom folder or None, entry template name) for a report's ``audience`` setting."""
    if audience in ENTRY:
        return None, ENTRY[audience]
    folder = Path(audience).expanduser()
    if not folder.is_dir():
        raise TemplateInputError(f"audience {audience!r} is neither executive, engineering nor a template folder")
    if not (folder / CUSTOM_ENTRY).is_file():
        raise TemplateInputError(f"custom template folder {str(folder)!r} has no {CUSTOM_ENTRY}")
    return str(folder.resolve()), CUSTOM_ENTRY


def render_template(audience: str, context: dict[str, Any], *, target: str, page_size: str = "A4") -> str:
    """Render the audience's template for ``target`` "email" (styles inlined) or "print"."""
    folder, entry = template_source(audience)
    env = environment(folder)
    size = PAGE_SIZES.get(str(page_size).lower(), "A4")
    try:
        html = env.get_template(entry).render(
            **context, target=target, layout=f"{target}.html.j2", page_size=size,
            # The words are English whatever the locale (it formats numbers and dates): a screen reader
            # told lang="de" read them with German pronunciation.
            lang="en",
        )
        css = env.get_template("email.css").render() if target == "email" else None
    except TemplateNotFound as exc:
        raise (TemplateInputError if folder else RenderError)(f"template not found: {exc.name}") from None
    except TemplateError as exc:
        raise template_failure(exc, folder) from None
    if folder:
        html = rendered_something(html, folder, entry)
    if css is None:
        return html
    return inline_styles(html, css)


def compact_css(css: str) -> str:
    """``css`` without its comments and the spaces nothing needs ("Helvetica, Arial" is "Helvetica,Arial"),
    and "#ffffff" as "#fff": the same rules in fewer bytes. Each inlined declaration is repeated on every
    element it styles; the 30-agent engineering email was 99,552 bytes on the wire of the 100,000 allowed, too
    near to give its table rows headers (``<th scope="row">``, for screen readers)."""
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    css = re.sub(r"\s*,\s*", ",", re.sub(r"\s+", " ", css))  # css-inline writes "a:b;c:d" itself
    return re.sub(r"#([0-9a-fA-F])\1([0-9a-fA-F])\2([0-9a-fA-F])\3\b", r"#\1\2\3", css).strip()


def inline_styles(html: str, css: str) -> str:
    """Move every style into ``style`` attributes; drop <style> and <link> elements. At-rules (the
    phone layout's @media) stay, in one <style> in <head>: they cannot be inlined."""
    inliner = css_inline.CSSInliner(
        keep_style_tags=False, keep_link_tags=False, keep_at_rules=True,
        load_remote_stylesheets=False, extra_css=compact_css(css), minify_css=True,
    )
    try:
        return inliner.inline(html)
    except Exception as exc:  # css_inline raises its own InlineError (a ValueError subclass)
        raise RenderError(f"could not inline the email styles: {exc}") from None

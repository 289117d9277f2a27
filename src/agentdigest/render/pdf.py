"""The PDF (``report.pdf``) from the print template, with WeasyPrint.

Only ``data:`` URLs may be fetched while rendering: charts are embedded SVG, and a custom
template cannot make the renderer reach out to the network or the file system.
"""

from __future__ import annotations

import logging

from ..errors import RenderError

log = logging.getLogger("agentdigest.render")
_NOTDEF = ".notdef glyph rendered"
#: How many of the characters no font draws one warning names.
_NAMED = 8


class _MissingGlyphs(logging.Filter):
    """Collects the characters no installed font draws and keeps WeasyPrint's warning about each one out of
    the log: it warns once per glyph drawn, so a Japanese report on a machine without a CJK font wrote 70
    lines of ".notdef glyph rendered" above the run's output (found in a rendering check)."""

    def __init__(self) -> None:
        super().__init__()
        self.chars: list[str] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if not str(record.msg).startswith(_NOTDEF):
            return True
        char = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
        if char not in self.chars:
            self.chars.append(str(char))
        return False


def render_pdf(html: str) -> bytes:
    """Lay out the print HTML on pages and return the PDF bytes."""
    from weasyprint import HTML  # imported here: it is the slowest import of the package
    from weasyprint.urls import URLFetcher

    missing = _MissingGlyphs()
    weasyprint_log = logging.getLogger("weasyprint")
    weasyprint_log.addFilter(missing)
    try:
        return HTML(string=html, url_fetcher=URLFetcher(allowed_protocols={"data"})).write_pdf()
    except Exception as exc:  # WeasyPrint raises many kinds; the caller wants one
        raise RenderError(f"could not render the PDF: {exc}") from exc
    finally:
        weasyprint_log.removeFilter(missing)
        if missing.chars:
            named = ", ".join(missing.chars[:_NAMED]) + (", …" if len(missing.chars) > _NAMED else "")
            log.warning("report.pdf: no installed font draws %s (%d character%s), so they print as empty boxes; "
                        "install a font that does (Debian: fonts-noto-cjk for Chinese, Japanese and Korean, "
                        "fonts-noto-color-emoji for emoji)", named, len(missing.chars),
                        "" if len(missing.chars) == 1 else "s")

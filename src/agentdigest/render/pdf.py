"""The PDF (``report.pdf``) from the print template, with WeasyPrint.

Only ``data:`` URLs may be fetched while rendering: charts are embedded SVG, and a custom
template cannot make the renderer reach out to the network or the file system.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import threading

from ..errors import RenderError

log = logging.getLogger("agentdigest.render")
_NOTDEF = ".notdef glyph rendered"
_FONTTOOLS = "Using fontTools instead of HarfBuzz-Subset"
_NO_LANG = 'Missing required "lang" attribute'
#: How many of the characters no font draws one warning names.
_NAMED = 8
#: Whether this process has said that HarfBuzz-Subset is missing (once is enough: it is the machine's, not the report's).
_said_no_subset = False
#: Each thread's WeasyPrint font configuration, made again once ``_fonts_generation`` moves on (forget_fonts).
_fonts = threading.local()
_fonts_generation = 0
#: The installed fonts as fc-list named them when forget_fonts last looked (None: not looked, or not listable).
_fonts_seen: str | None = None


class _MissingGlyphs(logging.Filter):
    """Collects the characters no installed font draws and keeps WeasyPrint's warning about each one out of
    the log: it warns once per glyph drawn, so a Japanese report on a machine without a CJK font wrote 70
    lines of ".notdef glyph rendered" above the run's output (found in a rendering check)."""

    def __init__(self) -> None:
        super().__init__()
        self.chars: list[str] = []
        self.no_subset = False
        self.no_lang = False

    def filter(self, record: logging.LogRecord) -> bool:
        # Without the HarfBuzz-Subset library WeasyPrint warns once per font of every PDF, five lines above the
        # demo's output on a Debian machine with the README's Pango packages (found in a minimal-install check)
        if str(record.msg).startswith(_FONTTOOLS):
            self.no_subset = True
            return False
        # The tagged PDF's language: WeasyPrint logs an ERROR, naming neither the template nor what to do
        if str(record.msg).startswith(_NO_LANG):
            self.no_lang = True
            return False
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
        # Tagged (headings, tables with their header cells, each chart a Figure with its alt text), so a screen
        # reader reads more than a run of text (an accessibility review: "Tagged: no", no chart's alt text).
        # It costs about 7% more time and 30 KB (the engineering report's 50 KB became 83 KB).
        return HTML(string=html, url_fetcher=URLFetcher(allowed_protocols={"data"})).write_pdf(
            pdf_tags=True, font_config=_font_config(html))
    except Exception as exc:  # WeasyPrint raises many kinds; the caller wants one
        raise RenderError(f"could not render the PDF: {exc}") from exc
    finally:
        weasyprint_log.removeFilter(missing)
        _say_no_subset(missing.no_subset)
        if missing.no_lang:
            log.warning('report.pdf: the print template\'s <html> has no lang attribute, so a screen reader must guess '
                        'the language of the PDF; write <html lang="{{ lang }}"> as the built-in one does')
        if missing.chars:
            named = ", ".join(missing.chars[:_NAMED]) + (", …" if len(missing.chars) > _NAMED else "")
            log.warning("report.pdf: no installed font draws %s (%d character%s), so they print as empty boxes; "
                        "install a font that does (Debian: fonts-noto-cjk for Chinese, Japanese and Korean, "
                        "fonts-noto-color-emoji for emoji)", named, len(missing.chars),
                        "" if len(missing.chars) == 1 else "s")


def _font_config(html: str) -> object | None:
    """The thread's font configuration, kept from one PDF to the next; None (a new one for this PDF) when the HTML
    declares fonts of its own, so a custom template's @font-face reaches no other report.

    Found in a long-run review of the scheduler: WeasyPrint makes a configuration per PDF, loading Fontconfig's
    configuration and fonts anew, and its memory is never all given back: the scheduler grew by about 230 KB per
    PDF (measured over 300 runs), for as long as it ran. One per thread (a scheduler renders on several report
    workers at once, and a Pango font map is not to be shared between threads) keeps it flat."""
    if "@font-face" in html.lower():
        return None
    if getattr(_fonts, "generation", None) != _fonts_generation:
        from weasyprint.text.fonts import FontConfiguration

        _fonts.config, _fonts.generation = FontConfiguration(), _fonts_generation
    return _fonts.config


def forget_fonts() -> None:
    """Make each thread's next PDF read the installed fonts anew (the scheduler's SIGHUP: a font installed since), when
    they changed since the last call (or cannot be listed, or were never listed: the first call).

    Found in a soak audit: every SIGHUP (logrotate's, daily) made each report worker's next PDF load a new font
    configuration, and WeasyPrint never gives all of one's memory back: about 230 KB per worker per SIGHUP, for
    as long as the scheduler ran (60 reloads with 2 workers: +27 MB); unchanged fonts now keep the one loaded."""
    global _fonts_generation, _fonts_seen
    seen = _installed_fonts()
    if seen is None or seen != _fonts_seen:
        _fonts_generation += 1
    _fonts_seen = seen


def _installed_fonts() -> str | None:
    """The font files Fontconfig knows (``fc-list``, which rescans a changed font folder), or None when it is
    missing or fails."""
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        return None
    try:
        listed = subprocess.run([fc_list, "--format", "%{file}\\n"], capture_output=True, text=True, timeout=30,
                                check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return "\n".join(sorted(listed.splitlines()))


def _say_no_subset(missing: bool) -> None:
    """One warning a process, instead of WeasyPrint's one per font of every PDF, when HarfBuzz-Subset is missing:
    the PDF is complete (fontTools embeds the fonts), but later WeasyPrint releases will need the library."""
    global _said_no_subset
    if missing and not _said_no_subset:
        _said_no_subset = True
        logging.getLogger("agentdigest.render.fonts").warning(
            "report.pdf: WeasyPrint found no HarfBuzz-Subset library and embedded the fonts with fontTools; the PDF is "
            "complete, but later WeasyPrint releases need it: install it (Debian: libharfbuzz-subset0)")

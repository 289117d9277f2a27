"""The PDF (``report.pdf``) from the print template, with WeasyPrint.

Only ``data:`` URLs may be fetched while rendering: charts are embedded SVG, and a custom
template cannot make the renderer reach out to the network or the file system.
"""

from __future__ import annotations

from ..errors import RenderError


def render_pdf(html: str) -> bytes:
    """Lay out the print HTML on pages and return the PDF bytes."""
    from weasyprint import HTML  # imported here: it is the slowest import of the package
    from weasyprint.urls import URLFetcher

    try:
        return HTML(string=html, url_fetcher=URLFetcher(allowed_protocols={"data"})).write_pdf()
    except Exception as exc:  # WeasyPrint raises many kinds; the caller wants one
        raise RenderError(f"could not render the PDF: {exc}") from exc

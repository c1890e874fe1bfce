"""A report's Markdown as one HTML page for a browser: tables styled, the chart inlined, no raw HTML passed."""

from __future__ import annotations

import base64
from html import escape

from markdown_it import MarkdownIt

# CommonMark with tables; `html: False` escapes any HTML inside the text (task names, log lines, evidence).
_MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable("table")
_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; padding: 0 1rem; color: #222; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.6rem; text-align: left; }
th { background: #f3f3f3; }
img { max-width: 100%; }
blockquote { border-left: 4px solid #d33; margin: 0; padding-left: 1rem; }
"""


def report_html(markdown: str, title: str, chart_name: str | None = None, chart_png: bytes | None = None) -> str:
    """The page; the chart's file reference becomes an inline PNG when its bytes are given."""
    if chart_name and chart_png is not None:
        inline = "data:image/png;base64," + base64.b64encode(chart_png).decode("ascii")
        markdown = markdown.replace(f"]({chart_name})", f"]({inline})")
    body = _MARKDOWN.render(markdown)
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>\n<body>\n{body}</body></html>\n"
    )

"""The HTML page of a report: Markdown rendered, the chart inlined, nothing in the text taken as HTML."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from beat.html import report_html
from gateway.routes.reports import wants_html

MARKDOWN = (
    "# Fleet status report: 2026-11-21\n\n| Task | Count |\n|---|---|\n| fleet.ping | 3 |\n\n![Chart](2026-11-21.png)\n"
)


def test_the_markdown_becomes_headings_and_tables_with_the_chart_inline() -> None:
    page = report_html(MARKDOWN, "Fleet status report 2026-11-21", "2026-11-21.png", b"\x89PNG fake")
    assert "<h1>Fleet status report: 2026-11-21</h1>" in page and "<td>fleet.ping</td>" in page
    assert '<img src="data:image/png;base64,iVBORyBmYWtl" alt="Chart" />' in page


def test_without_the_chart_file_the_page_keeps_its_name() -> None:
    assert '<img src="2026-11-21.png"' in report_html(MARKDOWN, "t", "2026-11-21.png", None)


@given(st.text())
def test_text_in_a_report_never_becomes_markup(text: str) -> None:
    # Given hostile text where a task name, a log line or an issue's evidence goes
    page = report_html(f"# Report\n\n| Task |\n|---|\n| {text} |\n\n- {text}\n<script>alert(1)</script>\n", "<b>t</b>")
    # Then no tag but the page's own appears
    assert "<script" not in page and "<b>" not in page
    assert 'href="javascript' not in page.lower()


def test_a_script_link_in_a_report_is_not_a_link() -> None:
    page = report_html("[click](javascript:alert(1)) ![x](javascript:alert(2))", "t")
    assert "href=" not in page and "src=" not in page


def test_browsers_get_html_and_api_clients_json() -> None:
    assert wants_html("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
    assert wants_html("text/html")
    for accept in (None, "", "*/*", "application/json", "text/html;q=0.5, application/json", "text/html;q=x"):
        assert not wants_html(accept), accept

"""Server-sent events: frame format and resumption ids."""

from __future__ import annotations

import pytest

from gateway.sse import format_event, resume_id


def test_an_event_frame_carries_its_stream_id_type_and_json_data() -> None:
    frame = format_event("1700000000000-0", "stage", {"stage": "analyst", "status": "done"})
    assert frame == b'id: 1700000000000-0\nevent: stage\ndata: {"stage":"analyst","status":"done"}\n\n'


@pytest.mark.parametrize(
    ("last_event_id", "cursor"),
    [
        ("1700000000000-3", "1700000000000-3"),
        (None, "0-0"),
        ("", "0-0"),
        ("$", "0-0"),
        ("1-2-3", "0-0"),
        ("abc", "0-0"),
    ],
)
def test_a_stream_resumes_after_a_well_formed_last_event_id_only(last_event_id: str | None, cursor: str) -> None:
    assert resume_id(last_event_id) == cursor

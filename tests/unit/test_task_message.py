"""What the worker's consumer checks of a task message before Celery reads it (Celery's protocol 2 types)."""

from __future__ import annotations

from typing import Any

import pytest

from worker.task_message import problem

HEADERS = {"lang": "py", "task": "fleet.ping", "id": "t-1", "root_id": "t-1", "parent_id": None, "retries": 0}
BODY = [[], {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}]


def test_a_message_as_celery_and_the_node_producer_write_it_is_readable() -> None:
    assert problem(HEADERS, BODY) is None
    node = {
        **HEADERS,
        "lang": "js",
        "timelimit": [None, None],
        "eta": None,
        "group_index": None,
        "x_correlation_id": "c",
    }
    assert problem(node, [["evt"], {}, None]) is None
    assert problem({**HEADERS, "timelimit": [30, 25.5]}, ([], {}, {})) is None


@pytest.mark.parametrize(
    ("headers", "body", "says"),
    [
        ({**HEADERS, "task": ["fleet.ping"]}, BODY, "header `task` is a list"),
        ({k: v for k, v in HEADERS.items() if k != "id"}, BODY, "header `id` is missing"),
        ({**HEADERS, "id": ""}, BODY, "header `id` is a str, not a non-empty string"),
        ({**HEADERS, "retries": True}, BODY, "header `retries` is a bool"),
        ({**HEADERS, "eta": 5}, BODY, "header `eta` is an int"),
        ({**HEADERS, "timelimit": [1, 2, 3]}, BODY, "not [soft, hard]"),
        ({**HEADERS, "timelimit": [float("nan"), None]}, BODY, "not seconds"),
        ({**HEADERS, "timelimit": [-1, None]}, BODY, "not seconds"),
        (HEADERS, {"args": []}, "the body is a dict"),
        (HEADERS, [[], []], "the body is a list, not [args, kwargs, embed]"),
        (HEADERS, [{}, {}, {}], "args are a dict"),
        (HEADERS, [[], [], {}], "kwargs are a list"),
        (HEADERS, [[], {}, []], "embed is a list"),
        (HEADERS, [[], {}, {"chord": []}], "`chord` is a list"),
    ],
)
def test_a_header_of_the_wrong_type_or_a_body_of_the_wrong_shape_is_named(
    headers: dict[str, Any], body: Any, says: str
) -> None:
    found = problem(headers, body)
    assert found is not None and says in found

"""A workflow request holding text no store can hold (a lone surrogate, NUL) is refused before it is stored."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from agents.models import WorkflowRequest
from tests.junk import JSON_VALUES
from tests.unstorable import BAD, _positions

# JSON proper: NaN and infinity are refused by another check (options' numbers must be finite).
FINITE_JSON = JSON_VALUES.filter(lambda v: "inf" not in repr(v) and "nan" not in repr(v))
TEMPLATE = {"input": "compute 1+1", "options": {"a": "b", "nested": [{"c": "d"}]}, "idempotency_key": "k"}


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_unstorable_text_in_any_string_of_a_request_is_refused(data: st.DataObject) -> None:
    request: dict[str, Any] = copy.deepcopy(TEMPLATE)
    request["options"]["extra"] = data.draw(FINITE_JSON)
    positions = _positions(request)
    positions[data.draw(st.integers(0, len(positions) - 1))](request, data.draw(BAD))
    with pytest.raises(ValidationError) as refused:
        WorkflowRequest.model_validate(request)
    assert {e["type"] for e in refused.value.errors()} <= {
        "invalid_text",
        "string_unicode",
        "extra_forbidden",
        "missing",
    }


@settings(max_examples=100, deadline=None)
@given(FINITE_JSON.filter(lambda v: "\\x00" not in repr(v) and "\\ud" not in repr(v)))
def test_options_of_storable_json_are_kept(value: Any) -> None:
    assert WorkflowRequest.model_validate({"input": "x", "options": {"v": value}}).options == {"v": value}


def test_the_refusal_names_where_the_text_is() -> None:
    with pytest.raises(ValidationError) as refused:
        WorkflowRequest.model_validate({"input": "x", "options": {"a": [1, {"k\ud800": 2}]}})
    assert "options.a.1.k\\ud800 holds a lone surrogate or NUL" in str(refused.value)

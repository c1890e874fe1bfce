"""The fast repr of return values writes exactly what Celery's saferepr writes."""

from __future__ import annotations

import math
from typing import Any

from celery.utils.saferepr import saferepr
from hypothesis import given
from hypothesis import strategies as st

from worker.saferepr import fast_saferepr

_TEXT = st.text(
    alphabet=st.sampled_from(["a", "Z", "'", '"', "\\", "\n", "é", "€", " ", ",", "{", "\x00"]), max_size=12
)
_SCALAR = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.decimals(allow_nan=False, places=2), _TEXT, st.binary()
)
_VALUE = st.recursive(
    _SCALAR,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=3).map(tuple),
        st.dictionaries(st.one_of(_TEXT, st.integers()), inner, max_size=4),
        st.sets(st.integers(), max_size=3),
    ),
    max_leaves=20,
)


@given(_VALUE, st.integers(min_value=1, max_value=300), st.integers(min_value=0, max_value=5))
def test_any_value_reads_as_celerys_saferepr(value: Any, maxlen: int, maxlevels: int) -> None:
    assert fast_saferepr(value, maxlen, maxlevels) == saferepr(value, maxlen, maxlevels)


def _ledger_result(message: str) -> dict[str, Any]:
    return {
        "event_id": "evt-1",
        "event_type": "transaction_created",
        "status": "rejected",
        "codes": ["exceeds_balance"],
        "violations": [{"code": "exceeds_balance", "field": "data.amount", "message": message}],
        "api_version": "v2",
        "correlation_id": None,
        "snapshot_id": "evt-1",
        "duration_ms": 0.052,
        "anomalies": [{"account": "acc-1", "z": math.inf, "flagged": True}],
    }


def test_a_ledger_result_is_rendered_whole_and_a_batch_result_is_cut_as_celery_cuts_it() -> None:
    one = _ledger_result("balance 'low' by \\ 3")
    assert fast_saferepr(one, 1024) == saferepr(one, 1024)
    assert "exceeds_balance" in fast_saferepr(one, 1024)
    batch = {"count": 5000, "results": [one] * 5000}
    assert fast_saferepr(batch, 1024) == saferepr(batch, 1024)
    assert len(fast_saferepr(batch, 1024)) < 1100


def test_a_worker_writes_return_values_with_the_fast_path() -> None:
    import celery.app.trace
    import celery.worker.request

    from worker.application import get_app

    app = get_app()

    assert app.conf.result_serializer == "json"  # the app's configuration, once read, installs it
    assert celery.app.trace.saferepr is fast_saferepr  # type: ignore[attr-defined]
    assert celery.worker.request.saferepr is fast_saferepr  # type: ignore[attr-defined]

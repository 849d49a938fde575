"""Windows of samples: averages, counter rates with resets, partial windows, no samples -> None."""

from __future__ import annotations

import pytest

from swell.core import windows


def test_counter_rate_over_a_full_window_uses_the_baseline_before_it() -> None:
    s = windows.Series(retention_s=600)
    for t in range(0, 121, 10):
        s.record(float(t), 5.0 * t)  # 5 per second
    assert s.rate(120.0, 60.0) == pytest.approx(5.0)
    assert s.increase(120.0, 60.0) == (300.0, 60.0)


def test_counter_reset_counts_the_new_value_as_increase() -> None:
    s = windows.Series(retention_s=600)
    for t, v in [(0, 100.0), (10, 150.0), (20, 10.0), (30, 40.0)]:  # restarted between 10 and 20
        s.record(float(t), v)
    assert s.increase(30.0, 60.0) == (50.0 + 10.0 + 30.0, 30.0)


def test_partial_window_rate_covers_only_the_samples_there_are() -> None:
    s = windows.Series(retention_s=600)
    s.record(100.0, 0.0)
    assert s.rate(100.0, 60.0) is None  # one sample is no rate
    s.record(110.0, 20.0)
    assert s.rate(110.0, 60.0) == pytest.approx(2.0)


def test_average_and_latest_without_samples_are_none_not_zero() -> None:
    s = windows.Series(retention_s=600)
    assert s.average(10.0, 5.0) is None and s.latest(10.0, 5.0) is None
    s.record(0.0, 4.0)
    s.record(5.0, 8.0)
    assert s.average(6.0, 10.0) == 6.0
    assert s.average(20.0, 10.0) is None  # both samples older than the window
    assert s.latest(6.0, 2.0) == 8.0 and s.latest(20.0, 2.0) is None


def test_samples_must_not_go_back_in_time_and_retention_prunes() -> None:
    s = windows.Series(retention_s=30)
    for t in range(0, 200, 10):
        s.record(float(t), 1.0)
    assert len(s) <= 5
    with pytest.raises(ValueError, match="older than the newest"):
        s.record(5.0, 1.0)


def test_store_selects_by_labels_and_forgets_a_replica() -> None:
    st = windows.Store(wanted={"m"})
    st.record(0.0, "m", windows.labels_of({"replica": "a", "model_name": "x"}), 1.0)
    st.record(0.0, "m", windows.labels_of({"replica": "b", "model_name": "y"}), 2.0)
    st.record(0.0, "ignored", windows.labels_of({}), 3.0)
    assert [dict(lb)["replica"] for lb, _ in st.select("m", {"model_name": "y"})] == ["b"]
    assert st.names() == ["m"]
    st.forget("replica", "a")
    assert [dict(lb)["replica"] for lb, _ in st.select("m")] == ["b"]

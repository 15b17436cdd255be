"""The reorder buffer's idle limit must outlast a dead worker's takeover."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from streams.core.settings import TocsinSettings


def test_idle_limit_must_exceed_session_plus_rebalance_timeout() -> None:
    s = TocsinSettings()
    assert s.reorder_idle_s > s.session_timeout_s + s.rebalance_timeout_s
    with pytest.raises(ValidationError, match="TOCSIN_REORDER_IDLE_S"):
        TocsinSettings(reorder_idle_s=16.0, session_timeout_s=8.0, rebalance_timeout_s=8.0)
    assert TocsinSettings(reorder_idle_s=17.0, session_timeout_s=8.0,
                          rebalance_timeout_s=8.0).reorder_idle_s == 17.0


def test_the_environment_variable_is_checked_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOCSIN_REORDER_IDLE_S", "5")
    with pytest.raises(ValidationError, match="must exceed"):
        TocsinSettings()

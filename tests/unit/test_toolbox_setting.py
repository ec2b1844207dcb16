"""SCAMTRAIL_TOOLBOX names the function that builds a worker's tools; unset, the built-in ones."""

from __future__ import annotations

import pytest

from infrastructure.settings import load_settings
from tests import fault_toolbox
from workers.toolbox import build_toolbox, toolbox_factory

pytestmark = pytest.mark.unit


def test_the_built_in_tools_unless_a_factory_is_named() -> None:
    assert toolbox_factory(load_settings()) is build_toolbox
    named = load_settings(toolbox="tests.fault_toolbox:build")
    assert toolbox_factory(named) is fault_toolbox.build


@pytest.mark.parametrize("name", ["tests.fault_toolbox", "tests.fault_toolbox:nothing_here"])
def test_a_name_that_does_not_resolve_is_refused_at_worker_start(name: str) -> None:
    with pytest.raises(ValueError, match="SCAMTRAIL_TOOLBOX"):
        toolbox_factory(load_settings(toolbox=name))


def test_the_fault_settings_name_the_test_toolbox_and_nothing_else() -> None:
    assert fault_toolbox.slow_tools(latency_s=0.4) == {
        "toolbox": "tests.fault_toolbox:build",
        "fault_tool_latency_s": 0.4,
    }
    settings = load_settings(**fault_toolbox.slow_tools(latency_s=0.4, ledger="l"))
    assert settings.toolbox == fault_toolbox.FAULT_TOOLBOX
    assert not hasattr(settings, "fault_tool_latency_s"), "not a production setting"

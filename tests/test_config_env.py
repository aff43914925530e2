"""`WEFT_...` variables override a member's YAML configuration, under the documented names."""

from __future__ import annotations

from pathlib import Path

import pytest

from kernel.errors import ConfError
from services.common.config import load_config

A, B = "a" * 32, "b" * 32


def test_variables_set_nested_keys_lists_and_peers(tmp_path: Path) -> None:
    # Prepare
    environ = {
        "WEFT_MEMBER_ID": A,
        "WEFT_SCHEDULER__AUTH__ENABLED": "false",
        "WEFT_TRANSFER__DATA_LANE_PORT": "9393",
        "WEFT_SCHEDULER__EXECUTORS": "[10.0.0.5:9380, 10.0.0.6:9380]",
        f"WEFT_PEERS__{B}__ENDPOINT": "10.0.0.9:9391",
        "WEFT_TASK_CREDENTIAL": "a task's variable, not a key",
        "weft_name": "lower case is not ours",
    }

    # Execute
    config = load_config(None, environ=environ)

    # Assert
    assert config.member_id == A
    assert config.scheduler.auth.enabled is False
    assert config.transfer.data_lane_port == 9393
    assert config.scheduler.executors == ["10.0.0.5:9380", "10.0.0.6:9380"]
    assert config.peers[B].endpoint == "10.0.0.9:9391"
    assert config.name == ""


def test_the_yaml_is_overridden_by_variables_and_they_by_overrides(tmp_path: Path) -> None:
    # Prepare
    path = tmp_path / "member.yaml"
    path.write_text(f"member_id: {A}\nname: from-yaml\nscheduler:\n  listen: 127.0.0.1:1\n  consumers: 3\n",
                    encoding="utf-8")
    environ = {"WEFT_SCHEDULER__LISTEN": "127.0.0.1:2", "WEFT_NAME": "from-env"}

    # Execute
    config = load_config(path, environ=environ, overrides={"name": "from-overrides"})

    # Assert: the YAML's other keys of the section stay.
    assert (config.scheduler.listen, config.scheduler.consumers, config.name) == ("127.0.0.1:2", 3, "from-overrides")


def test_a_misspelt_or_malformed_variable_is_refused() -> None:
    # Execute / Assert
    with pytest.raises(ConfError, match="listn"):
        load_config(None, environ={"WEFT_MEMBER_ID": A, "WEFT_SCHEDULER__LISTN": "127.0.0.1:2"})
    with pytest.raises(ConfError, match="warm_pool"):
        load_config(None, environ={"WEFT_MEMBER_ID": A, "WEFT_EXECUTOR__WARM_POOL": "many"})

"""services.common.ports: a port for a service started later is chosen where no connection takes it."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from services.common import ports


def test_a_free_port_lies_below_the_ephemeral_range_and_can_be_bound() -> None:
    # Execute
    low, _ = ports.ephemeral_range()
    chosen = [ports.free_port() for _ in range(20)]

    # Assert: every port is outside the range outgoing connections draw from, and free.
    assert all(ports.FIRST_PORT <= port < low for port in chosen)
    for port in chosen[:3]:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


def test_a_port_in_use_is_never_chosen(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Prepare: room for 1,000 ports below the range, one of them held by a listener.
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        taken = held.getsockname()[1]
        monkeypatch.setattr(ports, "_RANGE_FILE", tmp_path / "range")
        monkeypatch.setattr(ports, "FIRST_PORT", taken - 500)
        (tmp_path / "range").write_text(f"{taken + 500}\t60999\n", encoding="ascii")
        held.listen()

        # Execute
        chosen = {ports.free_port() for _ in range(300)}

    # Assert
    assert taken not in chosen and all(taken - 500 <= port < taken + 500 for port in chosen)


def test_without_room_below_the_range_the_kernel_picks(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Prepare: an ephemeral range that starts just above the first port; then no range file.
    (tmp_path / "range").write_text(f"{ports.FIRST_PORT + 10}\t60999\n", encoding="ascii")
    monkeypatch.setattr(ports, "_RANGE_FILE", tmp_path / "range")

    # Execute / Assert
    assert ports.free_port() > 0
    monkeypatch.setattr(ports, "_RANGE_FILE", tmp_path / "missing")
    assert ports.ephemeral_range() == ports.DEFAULT_EPHEMERAL

"""Transfer variables over the in-process and STANDALONE federations."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kernel.errors import ConfError, FederationError, FederationTimeout, PermissionDenied
from kernel.federation.base import Federation, Party, RoleTable
from kernel.federation.inprocess import InProcessFederation, InProcessHub
from kernel.federation.standalone import StandaloneFederation
from kernel.federation.transfer_variable import FlowContext, TransferVariables, parse_definitions

A, B, C = "a" * 32, "b" * 32, "c" * 32
ROLES = RoleTable({"promoter": (A,), "provider": (B, C), "arbiter": (A,)})
DEFINITIONS = parse_definitions(
    {
        "DemoTransferVariable": {
            "pubkey": {"src": "promoter", "dst": ["provider"]},
            "gradient": {"src": "provider", "dst": ["promoter"]},
            "model": {"src": ["promoter", "provider"], "dst": ["arbiter"]},
        }
    }
)

FederationFactory = Callable[[Party], Federation]


@pytest.fixture(params=["inprocess", "standalone"])
def make_federation(request: pytest.FixtureRequest, tmp_path: Path) -> FederationFactory:
    hub = InProcessHub()
    if request.param == "inprocess":
        return lambda party: InProcessFederation(hub, "session-1", party, ROLES)
    return lambda party: StandaloneFederation(tmp_path / "spool", "session-1", party, ROLES)


def variables(federation: Federation, timeout: float = 10.0) -> TransferVariables:
    return TransferVariables(DEFINITIONS, federation, FlowContext("fit"), timeout)


def run_parties(jobs: dict[Party, Callable[[TransferVariables], Any]], factory: FederationFactory) -> dict[Party, Any]:
    results: dict[Party, Any] = {}
    errors: list[BaseException] = []

    def worker(party: Party, job: Callable[[TransferVariables], Any]) -> None:
        try:
            results[party] = job(variables(factory(party)))
        except BaseException as exc:  # surfaced in the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=item) for item in jobs.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    if errors:
        raise errors[0]
    return results


def test_broadcast_get_and_indexed_exchange(make_federation: FederationFactory) -> None:
    # Prepare
    key = np.arange(5, dtype=np.int64)

    def promoter(tv: TransferVariables) -> Any:
        tv.pubkey.remote(key)
        tv.pubkey.remote({"only": "b"}, role="provider", idx=0, suffix=(1,))
        return tv.gradient.get()

    def provider(index: int) -> Callable[[TransferVariables], Any]:
        def job(tv: TransferVariables) -> Any:
            received = tv.pubkey.get(idx=0)
            extra = tv.pubkey.get(idx=0, suffix=(1,), timeout=5) if index == 0 else None
            tv.gradient.remote(float(received.sum()) + index)
            return received, extra
        return job

    # Execute
    results = run_parties(
        {Party("promoter", A): promoter, Party("provider", B): provider(0), Party("provider", C): provider(1)},
        make_federation,
    )

    # Assert
    assert results[Party("promoter", A)] == [10.0, 11.0]
    np.testing.assert_array_equal(results[Party("provider", B)][0], key)
    assert results[Party("provider", B)][1] == {"only": "b"}


def test_member_with_two_roles_talks_to_itself_across_roles(make_federation: FederationFactory) -> None:
    def sender(tv: TransferVariables) -> None:
        tv.model.remote([1, 2, 3])

    def arbiter(tv: TransferVariables) -> Any:
        return tv.model.get(role="promoter", idx=0)

    results = run_parties({Party("promoter", A): sender, Party("arbiter", A): arbiter}, make_federation)
    assert results[Party("arbiter", A)] == [1, 2, 3]


def test_roles_are_checked_against_the_definition(make_federation: FederationFactory) -> None:
    provider = variables(make_federation(Party("provider", B)))
    with pytest.raises(PermissionDenied, match="may not send"):
        provider.pubkey.remote(1)
    promoter = variables(make_federation(Party("promoter", A)))
    with pytest.raises(PermissionDenied, match="may not receive"):
        promoter.pubkey.get()
    with pytest.raises(PermissionDenied, match="cannot send to role 'arbiter'"):
        promoter.pubkey.remote(1, role="arbiter")


def test_sending_the_same_name_tag_and_party_twice_is_an_error(make_federation: FederationFactory) -> None:
    promoter = variables(make_federation(Party("promoter", A)))
    promoter.pubkey.remote(1)
    with pytest.raises(FederationError, match="already sent"):
        promoter.pubkey.remote(2, role="provider", idx=1)
    promoter.pubkey.remote(3, suffix=("next",))  # a new suffix is a new tag


def test_receiving_twice_is_an_error(make_federation: FederationFactory) -> None:
    variables(make_federation(Party("promoter", A))).pubkey.remote(1)
    provider = variables(make_federation(Party("provider", B)))
    assert provider.pubkey.get(idx=0) == 1
    with pytest.raises(FederationError, match="already received"):
        provider.pubkey.get(idx=0)


def test_get_timeout_names_variable_tag_and_peer(make_federation: FederationFactory) -> None:
    provider = variables(make_federation(Party("provider", B)), timeout=0.2)
    with pytest.raises(FederationTimeout) as info:
        provider.pubkey.get(idx=0, suffix=(7,))
    message = str(info.value)
    assert "DemoTransferVariable.pubkey" in message and "fit.7" in message and A in message


def test_idx_out_of_range_and_unknown_variable() -> None:
    federation = InProcessFederation(InProcessHub(), "s", Party("promoter", A), ROLES)
    tv = variables(federation)
    with pytest.raises(FederationError, match="idx=5"):
        tv.pubkey.remote(1, role="provider", idx=5)
    with pytest.raises(FederationError, match="no transfer variable named 'nope'"):
        _ = tv.nope


def test_bad_definitions_are_refused() -> None:
    with pytest.raises(ConfError, match="guest"):
        parse_definitions({"G": {"x": {"src": "guest", "dst": ["provider"]}}})
    with pytest.raises(ConfError, match="needs 'src' and 'dst'"):
        parse_definitions({"G": {"x": {"src": "promoter"}}})


def test_standalone_cleanup_removes_the_session(tmp_path: Path) -> None:
    fed = StandaloneFederation(tmp_path, "s-1", Party("promoter", A), ROLES)
    variables(fed).pubkey.remote(np.zeros(10))
    assert any((tmp_path / "s-1").rglob("*.msg"))
    fed.cleanup()
    assert not (tmp_path / "s-1").exists()

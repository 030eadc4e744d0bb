"""First contact settled by a witness over a trusted channel, and pins added by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from wizard.core.trust import (
    Sighting,
    TrustChanged,
    TrustKind,
    TrustMismatch,
    TrustRefused,
    TrustRequest,
    TrustStore,
    Witness,
    decide,
)

A = ":".join(["AA"] * 32)
B = ":".join(["BB"] * 32)


def _witness(seen: str | None, note: str = "") -> tuple[list[tuple[str, int]], Witness]:
    asked: list[tuple[str, int]] = []

    def witness(host: str, port: int) -> Sighting:
        asked.append((host, port))
        return Sighting("edge-node-1 (over SSH, host key SHA256:abc)", seen, note)

    return asked, witness


def test_a_witness_seeing_the_same_certificate_pins_it_without_asking(tmp_path: Path) -> None:
    store = TrustStore(tmp_path)
    asked, witness = _witness(A)
    decide(store, None, TrustKind.TLS, "10.0.0.10", 443, presented=A, pem="PEM", witness=witness)
    entry = store.pinned(TrustKind.TLS, "10.0.0.10", 443)
    assert entry is not None and entry["fingerprint"] == A and entry["pem"] == "PEM"
    assert entry["how"] == "verified: edge-node-1 (over SSH, host key SHA256:abc) sees the same certificate"
    assert asked == [("10.0.0.10", 443)]
    # Pinned now: the witness is not asked again.
    decide(store, None, TrustKind.TLS, "10.0.0.10", 443, presented=A, witness=witness)
    assert len(asked) == 1


def test_a_witness_seeing_another_certificate_refuses_even_with_an_operator(tmp_path: Path) -> None:
    store = TrustStore(tmp_path)
    _, witness = _witness(B)
    operator: list[TrustRequest] = []

    def confirm(request: TrustRequest) -> bool:
        operator.append(request)
        return True

    with pytest.raises(TrustMismatch) as refused:
        decide(store, confirm, TrustKind.TLS, "10.0.0.10", 443, presented=A, witness=witness)
    assert A in refused.value.message and B in refused.value.message and "trust add" in refused.value.remediation
    assert isinstance(refused.value, TrustRefused) and not operator
    assert store.pinned(TrustKind.TLS, "10.0.0.10", 443) is None


def test_a_witness_that_cannot_tell_leaves_it_to_the_operator_or_a_refusal(tmp_path: Path) -> None:
    store = TrustStore(tmp_path)
    _, witness = _witness(None, "openssl is not installed on the node")
    with pytest.raises(TrustRefused) as refused:
        decide(store, None, TrustKind.TLS, "10.0.0.10", 443, presented=A, witness=witness)
    assert "openssl is not installed" in refused.value.message
    assert "trust add 10.0.0.10:443" in refused.value.remediation
    decide(store, lambda r: True, TrustKind.TLS, "10.0.0.10", 443, presented=A, witness=witness)
    assert (store.pinned(TrustKind.TLS, "10.0.0.10", 443) or {})["how"] == "confirmed by the operator"


def test_a_changed_certificate_is_not_settled_by_a_witness(tmp_path: Path) -> None:
    store = TrustStore(tmp_path)
    store.pin(TrustKind.TLS, "10.0.0.10", 443, A)
    asked, witness = _witness(B)
    with pytest.raises(TrustChanged):
        decide(store, None, TrustKind.TLS, "10.0.0.10", 443, presented=B, witness=witness)
    assert not asked


def test_a_pin_added_by_hand_keeps_how_and_gains_the_certificate(tmp_path: Path) -> None:
    store = TrustStore(tmp_path)
    store.pin(TrustKind.TLS, "10.0.0.10", 443, A, how="added by the operator")
    decide(store, None, TrustKind.TLS, "10.0.0.10", 443, presented=A, pem="PEM")
    entry = store.pinned(TrustKind.TLS, "10.0.0.10", 443) or {}
    assert entry["pem"] == "PEM" and entry["how"] == "added by the operator"


def test_a_certificate_the_peer_holds_pins_it(tmp_path: Path) -> None:
    """A witness that cannot look at the address but reads the peer's own certificates (the cluster's TLS secrets)."""
    store = TrustStore(tmp_path)

    def cluster(host: str, port: int) -> Sighting:
        return Sighting("the cluster", holds=(B, A.replace(":", "").lower()))

    decide(store, None, TrustKind.TLS, "10.0.0.10", 443, presented=A, witness=cluster)
    entry = store.pinned(TrustKind.TLS, "10.0.0.10", 443)
    assert entry is not None and entry["how"] == "verified: the cluster holds the same certificate"


def test_a_certificate_the_peer_does_not_hold_is_left_to_the_operator(tmp_path: Path) -> None:
    store = TrustStore(tmp_path)

    def cluster(host: str, port: int) -> Sighting:
        return Sighting("the cluster", holds=(B,))

    with pytest.raises(TrustRefused) as refused:
        decide(store, None, TrustKind.TLS, "10.0.0.10", 443, presented=A, witness=cluster)
    assert "the cluster could not confirm it: none of the 1 certificate(s) it holds is the one presented" in (
        refused.value.message
    )
    asked: list[TrustRequest] = []
    decide(store, lambda r: asked.append(r) or True, TrustKind.TLS, "10.0.0.10", 443, presented=A, witness=cluster)
    entry = store.pinned(TrustKind.TLS, "10.0.0.10", 443)
    assert len(asked) == 1 and entry is not None and entry["how"] == "confirmed by the operator"

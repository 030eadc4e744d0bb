"""vCenter session against the simulator: login, cookie, lookups, logout, and TLS trust (refuse, pin, change)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.vcsim_peer import (  # noqa: F401 - fixtures
    DATACENTER,
    PASSWORD,
    VcsimServer,
    make_certificate,
    vcsim_binary_fixture,
    vcsim_fixture,
    vcsim_tls_fixture,
)
from wizard.core.errors import WizardError
from wizard.core.trust import TrustChanged, TrustKind, TrustRefused, TrustRequest, TrustStore, fetch_certificate
from wizard.providers.vsphere.errors import VsphereError
from wizard.providers.vsphere.session import connect

pytestmark = pytest.mark.vsphere


@pytest.fixture
def trust(tmp_path: Path) -> TrustStore:
    return TrustStore(tmp_path / "config")


def test_login_cookie_lookups_and_logout(vcsim: VcsimServer, trust: TrustStore) -> None:
    settings = vcsim.settings()
    with connect(settings, PASSWORD, trust, None, scheme="http") as session:
        name, value = session.cookie
        assert name == "vmware_soap_session" and value
        assert session.datacenter().name == DATACENTER
        assert session.cluster().name == settings.cluster
        assert session.datastore().name == settings.datastore
        assert session.network().name == settings.network
        key = session.session_key
        sm = session.content.sessionManager
    # After the block the session is logged out: the server no longer knows it.
    assert key
    with pytest.raises(Exception, match=r"(?i)not.?authenticated|session"):
        _ = sm.currentSession.key


def test_lookup_errors_name_the_field_and_choices(vcsim: VcsimServer, trust: TrustStore) -> None:
    with (
        connect(vcsim.settings(datastore="nope"), PASSWORD, trust, None, scheme="http") as session,
        pytest.raises(VsphereError) as err,
    ):
        session.datastore()
    assert "provider.vsphere.datastore" in err.value.remediation
    assert "LocalDS_0" in err.value.remediation


def test_connection_refused_is_translated(vcsim: VcsimServer, trust: TrustStore) -> None:
    settings = vcsim.settings()
    vcsim.stop()
    with pytest.raises(WizardError) as err:
        connect(settings, PASSWORD, trust, None, scheme="http").__enter__()
    assert err.value.title == "Cannot reach vCenter"
    assert "refused" in err.value.message


def test_unpinned_self_signed_without_confirm_is_refused(vcsim_tls: VcsimServer, trust: TrustStore) -> None:
    with pytest.raises(TrustRefused) as err:
        connect(vcsim_tls.settings(), PASSWORD, trust, None).__enter__()
    assert "not confirmed" in err.value.message
    assert trust.pinned(TrustKind.TLS, vcsim_tls.host, vcsim_tls.port) is None


def test_declined_confirmation_is_refused(vcsim_tls: VcsimServer, trust: TrustStore) -> None:
    asked: list[TrustRequest] = []

    def decline(request: TrustRequest) -> bool:
        asked.append(request)
        return False

    with pytest.raises(TrustRefused):
        connect(vcsim_tls.settings(), PASSWORD, trust, decline).__enter__()
    assert len(asked) == 1 and not asked[0].changed


def test_confirmed_certificate_is_pinned_then_used_without_asking(vcsim_tls: VcsimServer, trust: TrustStore) -> None:
    presented = fetch_certificate(vcsim_tls.host, vcsim_tls.port).fingerprint
    asked: list[TrustRequest] = []

    def accept(request: TrustRequest) -> bool:
        asked.append(request)
        return True

    with connect(vcsim_tls.settings(), PASSWORD, trust, accept) as session:
        assert session.datacenter().name == DATACENTER
    assert [r.presented for r in asked] == [presented]
    with connect(vcsim_tls.settings(), PASSWORD, trust, None) as session:  # pinned: no one needs asking
        assert session.cookie[1]


def test_fingerprint_in_settings_pins_without_asking(vcsim_tls: VcsimServer, trust: TrustStore) -> None:
    presented = fetch_certificate(vcsim_tls.host, vcsim_tls.port).fingerprint
    with connect(vcsim_tls.settings(tls_fingerprint=presented), PASSWORD, trust, None) as session:
        assert session.datacenter().name == DATACENTER
    entry = trust.pinned(TrustKind.TLS, vcsim_tls.host, vcsim_tls.port)
    assert entry is not None


def test_changed_certificate_raises_trust_changed(
    vcsim_binary: Path, vcsim_tls: VcsimServer, trust: TrustStore, tmp_path: Path
) -> None:
    with connect(vcsim_tls.settings(), PASSWORD, trust, lambda r: True):
        pass
    pinned = trust.pinned(TrustKind.TLS, vcsim_tls.host, vcsim_tls.port)
    assert pinned is not None
    port = vcsim_tls.port
    vcsim_tls.stop()
    # The same address now presents another certificate (a reinstalled vCenter, or an interceptor).
    with VcsimServer(vcsim_binary, tls=True, cert=make_certificate(tmp_path, "second"), port=port) as other:
        new = fetch_certificate(other.host, other.port).fingerprint
        with pytest.raises(TrustChanged) as err:
            connect(other.settings(), PASSWORD, trust, None).__enter__()
    assert err.value.request.presented == new
    assert err.value.request.pinned == pinned["fingerprint"]
    # A fingerprint in the settings that does not match is a change as well, before any login is sent.
    with (
        VcsimServer(vcsim_binary, tls=True, cert=make_certificate(tmp_path, "third")) as third,
        pytest.raises(TrustChanged),
    ):
        connect(third.settings(tls_fingerprint=new), PASSWORD, trust, None).__enter__()

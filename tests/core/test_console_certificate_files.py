"""The operator's console certificate files, checked before anything is sent (wizard.core.tlsfiles), and the project's
``console.certificate`` / ``console.domain``."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
import yaml

from tests.support.projects import base_doc
from wizard.core.errors import ProjectInvalid
from wizard.core.project import load_project
from wizard.core.redact import REDACTOR
from wizard.core.tlsfiles import check_certificate_set, covers
from wizard.lab.artifacts import operator_certificate

DOMAIN = "palette.example.com"


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path, Path]:
    return operator_certificate(tmp_path / "certs", DOMAIN, ip="10.10.0.10")


def test_a_good_set_is_read_with_its_fingerprint_and_names(files: tuple[Path, Path, Path]) -> None:
    cert, key, ca = files
    certs, problems = check_certificate_set(cert, key, ca, domain=DOMAIN)
    assert problems == [] and certs is not None
    assert certs.names == (DOMAIN, "10.10.0.10") and len(certs.fingerprint) == 95
    assert "PRIVATE KEY" not in repr(certs)  # the key never shows in a repr
    assert REDACTOR.redact(certs.key_pem.strip()) != certs.key_pem.strip()  # and is masked wherever it would appear


def test_each_mistake_names_its_file_and_the_fix(tmp_path: Path, files: tuple[Path, Path, Path]) -> None:
    cert, _, ca = files
    _, other_key, other_ca = operator_certificate(tmp_path / "other", "other.example.com")
    certs, problems = check_certificate_set(cert, other_key, other_ca, domain="palette.other.com")
    assert certs is None
    found = {p.field: p for p in problems}
    assert "is not the key of console.crt" in found["key"].message
    assert found["ca"].message == "ca.crt did not issue console.crt"
    assert "not palette.other.com" in found["domain"].message and not found["domain"].warning
    _, problems = check_certificate_set(cert, ca, None)
    assert [p.field for p in problems] == ["key"] and "not a PEM private key" in problems[0].message


def test_time_and_permissions(tmp_path: Path, files: tuple[Path, Path, Path]) -> None:
    cert, key, ca = files
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=400)
    certs, problems = check_certificate_set(cert, key, ca, now=later)
    assert certs is None and "is valid from" in problems[0].message
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(days=350)
    certs, problems = check_certificate_set(cert, key, ca, now=soon)
    assert certs is not None and problems[0].warning and "expires on" in problems[0].message
    os.chmod(key, 0o644)
    certs, problems = check_certificate_set(cert, key, ca)
    assert certs is not None and [p.message for p in problems] == [f"{key} can be read by other users"]
    # Without a domain the certificate should cover the address it is served at: a warning when it does not.
    certs, problems = check_certificate_set(cert, key, ca, address="10.10.0.99", platform="win32")
    assert certs is not None and problems[0].warning and "not 10.10.0.99" in problems[0].message


def test_wildcards_cover_one_label() -> None:
    assert covers(("*.example.com",), "palette.example.com")
    assert not covers(("*.example.com",), "a.palette.example.com") and not covers(("*.example.com",), "example.com")


def _project(tmp_path: Path, console: dict) -> Path:
    doc = base_doc()
    doc["console"] = {"email": "ops@example.com", "password": {"secret": "palette-admin"}, **console}
    path = tmp_path / "project.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_the_project_names_the_operator_files_and_a_domain(tmp_path: Path, files: tuple[Path, Path, Path]) -> None:
    cert, key, ca = files
    loaded = load_project(_project(tmp_path, {"certificate": {"cert": str(cert), "key": str(key), "ca": str(ca)},
                                              "domain": DOMAIN}))  # fmt: skip
    console = loaded.project.console
    assert console is not None and console.domain == DOMAIN and console.certificate is not None
    assert console.certificate.key == key and not [w for w in loaded.warnings if w.path.startswith("console")]
    # Without a domain the system address stays an IP: a warning, backup and restore need an FQDN.
    loaded = load_project(_project(tmp_path, {"certificate": {"cert": str(cert), "key": str(key)}}))
    (warning,) = [w for w in loaded.warnings if w.path == "console.domain"]
    assert "backup and restore need the system address to be an FQDN" in warning.message


def test_the_project_refuses_unusable_files_at_their_field(tmp_path: Path, files: tuple[Path, Path, Path]) -> None:
    cert, _, ca = files
    with pytest.raises(ProjectInvalid) as err:
        load_project(_project(tmp_path, {"certificate": {"cert": str(cert), "key": str(ca)}, "domain": "bad_name.x"}))
    paths = {p.path for p in err.value.problems if p.is_error}
    assert paths == {"console.certificate.key", "console.domain"}
    loaded = load_project(_project(tmp_path, {"domain": "10.10.0.10"}))
    assert any(w.path == "console.domain" and "IP address" in w.message for w in loaded.warnings)

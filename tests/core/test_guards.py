"""The release notes' guards and the ingress judgement, as pure functions of what the wizard read."""

from __future__ import annotations

import pytest

from wizard.appliance.guards import CONTENT, LOCALUI_SYNC, UPLOAD_AUTH, VERSION, UploadPlan, evaluate
from wizard.appliance.kube import Pod, judge_pods
from wizard.appliance.versions import ApplianceIdentity, Edition, Version
from wizard.core.checks.catalog import CATALOG, CheckSeverity

THREE = UploadPlan(content_bundle=True, pack_bundles=2, nodes=3)


def ident(version: str | None, *, content: bool | None = None, edition: Edition | None = None) -> ApplianceIdentity:
    return ApplianceIdentity(Version.parse(version) if version else None, edition, content_on_nodes=content)


def outcome(results: list, check: str) -> tuple[bool, str]:
    r = next(r for r in results if r.check == check)
    return r.failed, r.message


def test_every_guard_is_in_the_catalog_with_the_docs_words() -> None:
    assert CATALOG[UPLOAD_AUTH].severity is CheckSeverity.BLOCKER
    assert "Security Advisory 016 (PE-8523)" in CATALOG[UPLOAD_AUTH].remediation
    assert CATALOG[LOCALUI_SYNC].severity is CheckSeverity.WARNING and "PE-9263" in CATALOG[LOCALUI_SYNC].remediation
    assert "did not sync to linked hosts" in CATALOG[LOCALUI_SYNC].remediation
    assert CATALOG[CONTENT].severity is CheckSeverity.BLOCKER and CATALOG[VERSION].severity is CheckSeverity.WARNING


def test_a_current_release_passes_everything() -> None:
    results = evaluate(ident("4.9.46", content=False, edition=Edition.VERTEX), THREE)
    assert [r.check for r in results] == [VERSION, UPLOAD_AUTH, LOCALUI_SYNC, CONTENT]
    assert not any(r.failed for r in results)
    assert outcome(results, VERSION)[1] == "VerteX 4.9.46 on every node"


def test_before_4_9_14_nothing_is_uploaded() -> None:
    failed, message = outcome(evaluate(ident("4.9.10", content=True), THREE), UPLOAD_AUTH)
    # A full ISO: the content bundle is not needed, the pack bundles still would go up.
    assert failed and "not uploading 2 pack bundles" in message and "content bundle" not in message
    slim_plan = UploadPlan(content_bundle=True, pack_bundles=0, nodes=3)
    assert outcome(evaluate(ident("4.9.10", content=False), slim_plan), UPLOAD_AUTH)[0]
    nothing = UploadPlan(content_bundle=False, pack_bundles=0, nodes=3)
    assert not outcome(evaluate(ident("4.9.10", content=True), nothing), UPLOAD_AUTH)[0]


WARNED = [("4.9.44", 3, True), ("4.9.46", 3, False), (None, 3, True), ("4.9.44", 1, False)]


@pytest.mark.parametrize(("version", "nodes", "warned"), WARNED)
def test_pe_9263_warns_where_uploads_may_not_sync(version: str | None, nodes: int, warned: bool) -> None:
    plan = UploadPlan(content_bundle=True, pack_bundles=1, nodes=nodes)
    assert outcome(evaluate(ident(version), plan), LOCALUI_SYNC)[0] is warned


def test_slim_and_full_iso() -> None:
    failed, message = outcome(evaluate(ident("4.9.20", content=True), THREE), CONTENT)
    assert not failed and "the content came with the ISO" in message and "not needed" in message
    no_bundle = UploadPlan(content_bundle=False, pack_bundles=0, nodes=3)
    failed, message = outcome(evaluate(ident("4.9.44", content=False), no_bundle), CONTENT)
    assert failed and "slim ISO" in message and "no content bundle" in message
    # Not observed on the nodes: the version predicts it.
    assert not outcome(evaluate(ident("4.9.20"), no_bundle), CONTENT)[0]
    assert outcome(evaluate(ident(None), no_bundle), CONTENT)[0]


def test_an_unknown_or_mixed_version_warns() -> None:
    assert outcome(evaluate(ident(None), THREE), VERSION)[0]
    failed, message = outcome(evaluate(ident("4.9.44"), THREE, ("the nodes run different versions",)), VERSION)
    assert failed and "different versions" in message


MGMT = [Pod(ns, f"{ns}-pod", "Running") for ns in ("cp-system", "hubble-system", "jet-system", "ui-system")]


def test_the_ingress_follows_the_release() -> None:
    traefik = [*MGMT, Pod("traefik", "traefik-abc", "Running")]
    nginx = [*MGMT, Pod("ingress-nginx", "ingress-nginx-controller-x", "Running")]
    assert judge_pods(traefik, ident("4.9.44")) == ([], "traefik")
    assert judge_pods(nginx, ident("4.8.40")) == ([], "ingress-nginx")
    problems, found = judge_pods(nginx, ident("4.9.44"))  # a validation looking for nginx would be stale here
    assert found == "" and problems == [
        "no running traefik ingress pods (Palette 4.9.44: Traefik replaced ingress-nginx in 4.8.47)"
    ]
    assert judge_pods(nginx, ident(None)) == ([], "ingress-nginx")  # unknown release: either will do
    # Traefik in another namespace (the namespace is not published) still counts.
    assert judge_pods([*MGMT, Pod("kube-system", "traefik-7d9", "Running")], ident("4.9.46"))[1] == "traefik"


def test_pods_not_running_are_named() -> None:
    pods = [*MGMT[:-1], Pod("ui-system", "spectro-ui-1", "CrashLoopBackOff"), Pod("traefik", "traefik-1", "Running")]
    assert judge_pods(pods, ident("4.9.46"))[0] == ["ui-system: spectro-ui-1 CrashLoopBackOff"]
    assert judge_pods(MGMT[1:], ident(None))[0][0] == "no pods in cp-system"


def test_preflight_says_what_is_known_before_the_nodes_answer(tmp_path: object) -> None:
    from pathlib import Path

    from tests.support.projects import base_doc
    from wizard.core.jobs import StepContext
    from wizard.core.journal import Journal
    from wizard.core.paths import AppPaths
    from wizard.core.project import parse_project
    from wizard.core.secrets import SecretStore
    from wizard.install.steps.appliance import IDENTIFY_JOB, preflight_checks

    assert isinstance(tmp_path, Path)
    paths = AppPaths(tmp_path / "s", tmp_path / "l", tmp_path / "c", tmp_path / "k")
    journal = Journal.open(tmp_path / "s" / "j.json", "j")
    ctx = StepContext(parse_project(base_doc()).project, SecretStore(), journal, paths)
    (first,) = preflight_checks(ctx)
    assert not first.failed and "read from the nodes' Local UI" in first.message
    # The edition the ISO's embedded config.yaml declares (media reading hands it over parsed).
    (iso,) = preflight_checks(ctx, {"stylus": {"applianceType": "vertex"}})
    assert iso.message.startswith("the ISO says VerteX;") and iso.details["appliance"]["edition"] == "vertex"
    # A resumed run knows the appliance from the journal: every guard applies before anything is touched again.
    journal.job_started(IDENTIFY_JOB, "x")
    journal.job_done(IDENTIFY_JOB, "x", {"appliance": ident("4.9.10", content=False).to_dict()})
    checks = {r.check: r for r in preflight_checks(ctx)}
    assert checks[UPLOAD_AUTH].failed is False  # this project uploads nothing
    assert checks[CONTENT].failed  # ... but the nodes hold no content and the project gives no bundle

"""``appliance.boot``: the project field, its default, and the preflight check that says what each node's boot does."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.projects import base_doc
from wizard.core.checks import CheckSeverity
from wizard.core.errors import ProjectInvalid
from wizard.core.project import BootMode, ProviderType, parse_project
from wizard.install.checks.boot import BootInputs, check_boot
from wizard.lab.artifacts import appliance_iso, appliance_menu

NODES = ("node-1", "node-2")


def inputs(iso: Path | None, mode: BootMode, **kw: object) -> BootInputs:
    base: dict[str, object] = {
        "nodes": NODES,
        "provider": ProviderType.VSPHERE,
        "mode": mode,
        "seeding": True,
        "iso": iso,
        "signature_verified": True,
        "external_url": "",
    }
    base.update(kw)
    return BootInputs(**base)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return appliance_iso(tmp_path_factory.mktemp("iso") / "a.iso")


def test_unattended_says_what_the_copy_boots(shipped: Path) -> None:
    results = check_boot(inputs(shipped, BootMode.UNATTENDED))
    assert [r.target for r in results] == ["node-1 (vSphere, boot: unattended)", "node-2 (vSphere, boot: unattended)"]
    assert all(not r.failed for r in results)
    assert "unattended copy" in results[0].message and "2→0" in results[0].message
    assert "'Palette eXtended Kubernetes Edge Installer' (entry 0) after 5 s, installing with its seed" in (
        results[0].message
    )
    assert results[0].details["default"] == 2 and results[0].details["automatic"] == 0


def test_an_unverified_iso_blocks_the_unattended_copy(shipped: Path) -> None:
    results = check_boot(inputs(shipped, BootMode.UNATTENDED, signature_verified=False))
    assert all(r.failed and r.definition.severity is CheckSeverity.BLOCKER for r in results)
    assert "no signature was checked" in results[0].message


def test_an_iso_that_boots_unattended_is_used_as_it_is(tmp_path: Path) -> None:
    iso = appliance_iso(tmp_path / "auto.iso", default=0)
    results = check_boot(inputs(iso, BootMode.UNATTENDED, signature_verified=False))
    assert not results[0].failed and "used as it is" in results[0].message


def test_no_automatic_entry_blocks_every_strategy(tmp_path: Path) -> None:
    menu = 'set default=0\nmenuentry "Palette Edge Interactive Installer" {\n linux /k interactive-install\n}\n'
    iso = appliance_iso(tmp_path / "i.iso", menu=menu)
    for mode in BootMode:
        result = check_boot(inputs(iso, mode))[0]
        assert result.failed, mode
    assert "no automatic installer entry" in check_boot(inputs(iso, BootMode.UNATTENDED))[0].message
    assert "only the interactive installer" in check_boot(inputs(iso, BootMode.CONSOLE))[0].message


def test_keys_need_a_countdown(tmp_path: Path) -> None:
    iso = appliance_iso(tmp_path / "t0.iso", menu=appliance_menu(timeout=0))
    assert "timeout 0" in check_boot(inputs(iso, BootMode.KEYS))[0].message
    ok = check_boot(inputs(appliance_iso(tmp_path / "t5.iso"), BootMode.KEYS))[0]
    assert not ok.failed and "presses Home Enter on the VM's console within those 5 s" in ok.message


def test_console_tells_the_operator_which_keys(shipped: Path) -> None:
    result = check_boot(inputs(shipped, BootMode.CONSOLE, provider=ProviderType.REDFISH))[0]
    assert not result.failed and "the operator presses Home Enter at the node's console within 5 s" in result.message


def test_an_iso_hosted_elsewhere_is_a_warning(shipped: Path) -> None:
    results = check_boot(inputs(shipped, BootMode.UNATTENDED, external_url="http://files/palette.iso"))
    warnings = [r for r in results if r.check == "media.boot-url"]
    assert len(warnings) == 2 and warnings[0].definition.severity is CheckSeverity.WARNING


def test_boot_field_default_and_validation(tmp_path: Path) -> None:
    appliance_iso(tmp_path / "a.iso")
    project = parse_project(base_doc(files={"iso": "a.iso"}), base=tmp_path).project
    assert project.appliance.boot is None and project.boot_mode() is BootMode.UNATTENDED
    assert parse_project(base_doc(), base=tmp_path).project.boot_mode() is BootMode.CONSOLE

    def problems(doc: dict[str, object]) -> str:
        with pytest.raises(ProjectInvalid) as err:
            parse_project(doc, base=tmp_path)
        return err.value.render()

    keyed = problems(base_doc(files={"iso": "a.iso"}, appliance={"boot": "keys"}))
    assert "appliance.boot" in keyed and "keyboard path" in keyed
    assert "needs the ISO" in problems(base_doc(appliance={"boot": "unattended"}))
    assert "not a valid choice" in problems(base_doc(files={"iso": "a.iso"}, appliance={"boot": "sometimes"}))
    console = parse_project(base_doc(files={"iso": "a.iso"}, appliance={"boot": "console"}), base=tmp_path).project
    assert console.boot_mode() is BootMode.CONSOLE


def test_no_iso_in_the_project_still_says_what_to_do() -> None:
    result = check_boot(inputs(None, BootMode.CONSOLE, provider=ProviderType.MANUAL))[0]
    assert not result.failed and "Home Enter" in result.message


def test_stuck_watch_judges_each_live_boot_once_after_its_budget() -> None:
    from wizard.appliance.stuck import StuckPolicy, StuckWatch

    watch = StuckWatch(StuckPolicy(budget=60.0, guidance="press Home Enter"))
    assert not watch.due("boot-a", 0.0) and not watch.due("boot-a", 59.0) and watch.due("boot-a", 60.0)
    automatic = "BOOT_IMAGE=/boot/kernel cdroot root=live:CDLABEL=COS_LIVE nodepair.enable"
    assert watch.verdict("node-1", "boot-a", automatic, 60.0) is None  # not the interactive installer: keep waiting
    assert not watch.due("boot-a", 500.0), "a boot is judged once"
    assert not watch.due("boot-b", 500.0) and watch.due("boot-b", 560.0), "a new boot gets a new budget"
    stuck = watch.verdict("node-1", "boot-b", automatic + " interactive-install", 600.0)
    assert stuck is not None and "node-1" in stuck.message and "10 min" in stuck.message
    assert "press Home Enter" in (stuck.remediation or "") and "--only-node node-1" in (stuck.remediation or "")


def test_console_guidance_comes_from_the_menu(shipped: Path, tmp_path: Path) -> None:
    from wizard.appliance.media import inspect_iso

    info = inspect_iso(shipped)
    assert info.console_keys() == ["home", "enter"]
    assert "press Home Enter to boot 'Palette eXtended Kubernetes Edge Installer' (entry 0)" in info.console_guidance()
    first = 'menuentry "Palette eXtended Kubernetes Edge Installer" '
    menu = appliance_menu().replace(first, 'menuentry "Memtest" {\n linux16 /memtest\n}\n' + first, 1)
    shifted = inspect_iso(appliance_iso(tmp_path / "s.iso", menu=menu))
    assert shifted.automatic is not None and shifted.automatic.index == 1
    assert shifted.console_keys() == ["home", "down", "enter"]

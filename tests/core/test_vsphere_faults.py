"""vCenter behaviour the simulator does not model, with pyVmomi's own fault objects at the call boundary.

vcsim accepts any login, grants every privilege, allows duplicate VM names, never runs out of resources and ignores
DRS changes; here minimal fakes raise (or return) the real pyVmomi faults and results where pyVmomi would.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pyVmomi import vim, vmodl

from wizard.core.cancel import CancelToken
from wizard.core.errors import Cancelled, WizardError
from wizard.core.progress import Progress
from wizard.core.project import SecretRef, VmMode, VsphereSettings
from wizard.core.trust import TrustStore
from wizard.providers.vsphere import checks, session, vms
from wizard.providers.vsphere.errors import translate, translate_fault

SECRET = "Tr0ub4dor&3-vc"


def settings(**kw: Any) -> VsphereSettings:
    base: dict[str, Any] = {
        "server": "vc.example.test",
        "username": "svc-palette@vsphere.local",
        "password": SecretRef("vc"),
        "datacenter": "DC0",
        "datastore": "ds1",
        "network": "VM Network",
    }
    base.update(kw)
    return VsphereSettings(**base)


# -- fault translation ---------------------------------------------------------------------------------------


def test_invalid_login_at_connect_is_translated_without_the_password(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls: list[dict[str, Any]] = []

    def smart_connect(**kw: Any) -> Any:
        calls.append(kw)
        raise vim.fault.InvalidLogin(msg="Cannot complete login due to an incorrect user name or password.")

    monkeypatch.setattr(session, "SmartConnect", smart_connect)
    with pytest.raises(WizardError) as err:
        session.login(settings(), SECRET, TrustStore(tmp_path), None, scheme="http")
    assert err.value.title == "vCenter login failed"
    assert "provider.vsphere.username" in err.value.remediation
    assert SECRET not in err.value.render()
    assert calls[0]["pwd"] == SECRET and calls[0]["protocol"] == "http" and calls[0]["sslContext"] is None


def test_connection_refused_at_connect(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def smart_connect(**kw: Any) -> Any:
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(session, "SmartConnect", smart_connect)
    with pytest.raises(WizardError) as err:
        session.login(settings(port=8443), SECRET, TrustStore(tmp_path), None, scheme="http")
    assert err.value.title == "Cannot reach vCenter" and "vc.example.test:8443 refused" in err.value.message


def test_no_permission_names_every_missing_privilege() -> None:
    folder = vim.Folder("group-v3")
    fault = vim.fault.NoPermission(
        object=folder,
        privilegeId="VirtualMachine.Inventory.Create",
        missingPrivileges=[
            vim.fault.NoPermission.EntityPrivileges(
                entity=folder, privilegeIds=["VirtualMachine.Inventory.Create", "VirtualMachine.Config.AddNewDisk"]
            )
        ],
    )
    err = translate_fault(fault, "creating VM pma-node-1")
    assert err.title == "Missing vCenter privilege"
    assert "VirtualMachine.Config.AddNewDisk" in err.message and "VirtualMachine.Inventory.Create" in err.message
    assert "group-v3" in err.details
    # Older vCenters name only one privilege.
    single = translate_fault(vim.fault.NoPermission(privilegeId="Datastore.AllocateSpace"), "x")
    assert "Datastore.AllocateSpace" in single.message


@pytest.mark.parametrize(
    ("fault", "title", "needle"),
    [
        (
            vim.fault.DuplicateName(name="pma-node-1", object=vim.Folder("group-v3")),
            "Name already in use",
            "pma-node-1",
        ),
        (
            vim.fault.InsufficientMemoryResourcesFault(msg="Insufficient memory resources.", unreserved=1, requested=2),
            "Not enough resources",
            "Insufficient memory",
        ),
        (vim.fault.InsufficientResourcesFault(msg="Insufficient resources."), "Not enough resources", "Insufficient"),
        (vim.fault.FileNotFound(file="[ds1] palette-iso/pma.iso"), "File not found", "[ds1] palette-iso/pma.iso"),
        (vim.fault.FileAlreadyExists(file="[ds1] x"), "Datastore file error", "[ds1] x"),
        (vim.fault.InvalidPowerState(existingState="poweredOn"), "Wrong power state", "poweredOn"),
        (vmodl.fault.ManagedObjectNotFound(obj=vim.VirtualMachine("vm-9")), "Object vanished", "no longer exists"),
        (vmodl.fault.InvalidArgument(invalidProperty="spec"), "vCenter refused the operation", "InvalidArgument"),
    ],
)
def test_faults_become_wizard_errors(fault: Exception, title: str, needle: str) -> None:
    err = translate(fault, "doing it", "vc", 443)
    assert isinstance(err, WizardError)
    assert err.title == title and needle in err.message and err.remediation


def test_wizard_errors_and_cancel_pass_through() -> None:
    e = WizardError("a", "b")
    c = Cancelled("x")
    assert translate(e, "d", "h", 1) is e and translate(c, "d", "h", 1) is c


# -- tasks ---------------------------------------------------------------------------------------------------


class FakeTask:
    """A task whose ``info`` walks through the given states; ``CancelTask`` is recorded."""

    def __init__(self, infos: list[Any]) -> None:
        self.infos = infos
        self.cancelled = False

    @property
    def info(self) -> Any:
        return self.infos.pop(0) if len(self.infos) > 1 else self.infos[0]

    def CancelTask(self) -> None:
        self.cancelled = True


def info(state: str, progress: int | None = None, error: Any = None, result: Any = None) -> Any:
    return SimpleNamespace(state=state, progress=progress, error=error, result=result, cancelable=True)


def test_task_failure_with_duplicate_name_is_translated() -> None:
    task = FakeTask([info("running", 10), info("error", error=vim.fault.DuplicateName(name="pma-node-2"))])
    with pytest.raises(WizardError) as err:
        vms.wait_task(task, "creating VM pma-node-2", CancelToken(), poll=0.001)  # type: ignore[arg-type]
    assert err.value.title == "Name already in use" and "creating VM pma-node-2" in err.value.message


def test_task_progress_is_reported_and_result_returned() -> None:
    progress = Progress()
    progress.add_task("t", "t", "s")
    reporter = progress.root().child(0, 1, task="t")
    task = FakeTask([info("queued"), info("running", 40), info("running", 80), info("success", result="vm-7")])
    assert vms.wait_task(task, "x", CancelToken(), reporter, poll=0.001) == "vm-7"  # type: ignore[arg-type]
    assert reporter.fraction == 1.0


def test_cancel_while_waiting_cancels_the_task() -> None:
    cancel = CancelToken()
    cancel.cancel("stop")
    task = FakeTask([info("running", 5)])
    with pytest.raises(Cancelled):
        vms.wait_task(task, "x", cancel, poll=0.001)  # type: ignore[arg-type]
    assert task.cancelled


def test_power_on_without_resources() -> None:
    fault = vim.fault.InsufficientCpuResourcesFault(msg="Insufficient CPU resources.", unreserved=0, requested=8000)
    task = FakeTask([info("error", error=fault)])
    with pytest.raises(WizardError) as err:
        vms.wait_task(task, "powering on pma-node-1", CancelToken(), poll=0.001)  # type: ignore[arg-type]
    assert err.value.title == "Not enough resources" and "powering on pma-node-1" in err.value.message


# -- privileges ----------------------------------------------------------------------------------------------


class FakeAuth:
    """``HasPrivilegeOnEntity`` over a table of granted privileges per entity id."""

    def __init__(self, granted: dict[str, set[str]]) -> None:
        self.granted = granted
        self.asked: list[tuple[str, str, list[str]]] = []

    def HasPrivilegeOnEntity(self, entity: Any, sessionId: str, privId: list[str]) -> list[bool]:
        self.asked.append((entity._moId, sessionId, privId))
        return [p in self.granted.get(entity._moId, set()) for p in privId]


def _plan(mode: VmMode, *, keys: bool = False) -> checks.PrivilegePlan:
    return checks.plan_privileges(
        mode,
        keys=keys,
        root=vim.Folder("group-d1"),
        datastore=vim.Datastore("datastore-1"),
        folder=vim.Folder("group-v3"),
        pool=vim.ResourcePool("resgroup-8"),
        network=vim.Network("network-7"),
        cluster=vim.ClusterComputeResource("domain-c7"),
        vms_by_name={"pma-node-1": vim.VirtualMachine("vm-11")},
    )


def test_privileges_needed_depend_on_the_mode() -> None:
    create = {label: set(p) for label, _, p in _plan(VmMode.CREATE).entries}
    existing = {label: set(p) for label, _, p in _plan(VmMode.EXISTING).entries}
    assert "VirtualMachine.Inventory.Create" in create["VM folder"]
    assert "Datastore.AllocateSpace" in create["datastore"] and "Datastore.FileManagement" in create["datastore"]
    assert create["resource pool"] == {"Resource.AssignVMToPool"} and create["network"] == {"Network.Assign"}
    assert "VM folder" not in existing and "Datastore.AllocateSpace" not in existing["datastore"]
    assert "VirtualMachine.Interact.PowerOn" in existing["VM pma-node-1"]
    assert "VirtualMachine.Interact.SetCDMedia" in existing["VM pma-node-1"]


def test_console_keys_need_the_keyboard_privilege_on_the_vms() -> None:
    key = "VirtualMachine.Interact.PutUsbScanCodes"
    assert all(key not in p for _, _, p in _plan(VmMode.CREATE).entries)
    with_keys = {label: set(p) for label, _, p in _plan(VmMode.CREATE, keys=True).entries}
    assert key in with_keys["VM folder"] and key not in with_keys["datastore"]
    assert key in {
        p for label, _, ps in _plan(VmMode.EXISTING, keys=True).entries for p in ps if label.startswith("VM")
    }


def test_missing_privileges_are_listed_per_object() -> None:
    plan = _plan(VmMode.CREATE)
    everything = {label: set(p) for label, _, p in plan.entries}
    granted = {entity._moId: set(p) for _, entity, p in plan.entries}
    granted["group-v3"] -= {"VirtualMachine.Inventory.Create"}
    granted["datastore-1"] = set()
    auth = FakeAuth(granted)
    missing = checks.missing_privileges(auth, "session-1", plan)
    assert ("VM folder", "VirtualMachine.Inventory.Create") in missing
    assert {p for label, p in missing if label == "datastore"} == everything["datastore"]
    assert all(sid == "session-1" for _, sid, _ in auth.asked)
    assert checks.missing_privileges(FakeAuth({e._moId: set(p) for _, e, p in plan.entries}), "s", plan) == []


def test_a_short_answer_counts_as_missing() -> None:
    plan = checks.PrivilegePlan()
    plan.add("root", vim.Folder("group-d1"), ("System.View", "System.Read"))

    class Short:
        def HasPrivilegeOnEntity(self, **kw: Any) -> list[bool]:
            return [True]

    assert checks.missing_privileges(Short(), "s", plan) == [("root", "System.Read")]


# -- DRS ----------------------------------------------------------------------------------------------------


def _host(name: str) -> Any:
    return SimpleNamespace(name=name, runtime=SimpleNamespace(connectionState="connected", inMaintenanceMode=False))


def test_anti_affinity_skipped_when_drs_is_off() -> None:
    cluster = SimpleNamespace(
        name="C0",
        host=[_host("h1"), _host("h2"), _host("h3")],
        configurationEx=SimpleNamespace(drsConfig=SimpleNamespace(enabled=False), rule=[]),
        ReconfigureComputeResource_Task=lambda **kw: pytest.fail("must not reconfigure"),
    )
    fake_session = SimpleNamespace(cluster=lambda: cluster)
    result = vms.anti_affinity(fake_session, [vim.VirtualMachine("vm-1")] * 3, "r", CancelToken())  # type: ignore[arg-type]
    assert result.action == "skipped" and "DRS is off" in result.message


def test_existing_vm_with_wrong_firmware_and_sizes_is_described() -> None:
    network = SimpleNamespace(name="VM Network", _moId="network-7")  # an unbound moref has no name to read
    disk = lambda key, unit, gb: vim.vm.device.VirtualDisk(  # noqa: E731
        key=key, controllerKey=1000, unitNumber=unit, capacityInKB=gb * 1024 * 1024
    )
    vm = SimpleNamespace(
        config=SimpleNamespace(
            firmware="bios",
            hardware=SimpleNamespace(
                numCPU=4,
                memoryMB=8192,
                device=[
                    vim.vm.device.ParaVirtualSCSIController(key=1000, busNumber=0),
                    disk(2000, 0, 300),
                    disk(2001, 1, 100),
                    vim.vm.device.VirtualVmxnet3(
                        key=4000,
                        backing=vim.vm.device.VirtualEthernetCard.NetworkBackingInfo(deviceName="Other", network=None),
                    ),
                ],
            ),
        )
    )
    problems = vms.validate(vm, settings().vm, network)  # type: ignore[arg-type]
    text = "\n".join(problems)
    assert "UEFI" in text and "4 vCPU" in text and "8 GB memory" in text
    assert "data disk is 100 GB, needs at least 500 GB" in text and "OS disk" not in text
    assert "no network adapter" in text


class QuestionVm:
    """A VM whose runtime carries a real vim.vm.QuestionInfo; records AnswerVM calls."""

    def __init__(self, question: vim.vm.QuestionInfo | None) -> None:
        self.name = "pma-node-1"
        self.runtime = SimpleNamespace(question=question)
        self.answers: list[tuple[str, str]] = []

    def AnswerVM(self, questionId: str, answerChoice: str) -> None:
        self.answers.append((questionId, answerChoice))
        self.runtime.question = None


def _question(message_id: str, text: str) -> vim.vm.QuestionInfo:
    choices = vim.option.ChoiceOption(
        choiceInfo=[
            vim.ElementDescription(key="0", label="Yes", summary="Yes"),
            vim.ElementDescription(key="1", label="No", summary="No"),
        ],
        defaultIndex=1,
    )
    return vim.vm.QuestionInfo(
        id="_vmx1", text=text, choice=choices, message=[vim.vm.Message(id=message_id, text=text)]
    )


def test_cdrom_door_lock_question_is_answered_yes() -> None:
    vm = QuestionVm(
        _question(
            "msg.cdromdisconnect.locked",
            "The guest operating system has locked the CD-ROM door and is probably using the CD-ROM. "
            "Disconnect anyway?",
        )
    )
    task = FakeTask([info("running"), info("success")])
    vms.wait_task(task, "ejecting the ISO", CancelToken(), vm=vm, poll=0.001)  # type: ignore[arg-type]
    assert vm.answers == [("_vmx1", "0")]


def test_any_other_question_stops_with_its_text() -> None:
    vm = QuestionVm(_question("msg.uuid.altered", "This virtual machine might have been moved or copied."))
    task = FakeTask([info("running"), info("success")])
    with pytest.raises(WizardError) as raised:
        vms.wait_task(task, "booting", CancelToken(), vm=vm, poll=0.001)  # type: ignore[arg-type]
    assert raised.value.title == "The VM is waiting for an answer"
    assert "moved or copied" in raised.value.message and "vSphere Client" in raised.value.remediation
    assert vm.answers == []

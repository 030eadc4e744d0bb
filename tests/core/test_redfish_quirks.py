"""The Redfish client's decisions against BMC answers shaped after the DMTF Redfish schema (ServiceRoot,
SessionService, ComputerSystem, Manager, VirtualMedia, Task, Message), served through ``httpx.MockTransport``.

The sushy emulator has no SessionService, no Manager-side virtual media, no tasks and no field-rejecting
InsertMedia, so those paths are exercised here, with vendor identities as real BMCs report them.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from wizard.core.cancel import CancelToken
from wizard.core.checks.catalog import CheckResult, Outcome
from wizard.core.progress import Progress
from wizard.core.project import Bmc, SecretRef
from wizard.core.trust import TrustStore
from wizard.providers.isoserver import IsoServer
from wizard.providers.redfish import (
    CHECKS,
    AuthRefused,
    InsertMediaRefused,
    IsoNotFetched,
    NoCdMedia,
    RedfishBootJob,
    RedfishClient,
    RedfishError,
    RedfishTimeouts,
    TaskFailed,
    run_checks,
)
from wizard.providers.redfish.actions import choose_reset
from wizard.providers.redfish.quirks import GENERIC, QUIRKS, BmcIdentity, quirks_for
from wizard.providers.redfish.session import parse_address

USER, PASSWORD = "root", "calvin-Secret-9"
TOKEN = "0123456789abcdef-session-token"
SYS = "/redfish/v1/Systems/System.Embedded.1"
MGR = "/redfish/v1/Managers/iDRAC.Embedded.1"
TASK = "/redfish/v1/TaskService/Tasks/JID_001"
QUICK = RedfishTimeouts(request=5, insert=5, task=5, power=5, fetch=1.0, poll=0.02)


def message(mid: str, text: str) -> dict[str, Any]:
    """A Redfish error body with one ``@Message.ExtendedInfo`` entry (Message.v1 shape)."""
    return {
        "error": {
            "code": "Base.1.12.GeneralError",
            "message": "A general error has occurred. See ExtendedInfo for more information.",
            "@Message.ExtendedInfo": [
                {
                    "@odata.type": "#Message.v1_1_1.Message",
                    "MessageId": mid,
                    "Message": text,
                    "Severity": "Warning",
                    "Resolution": "Remove the property from the request body and resubmit the request.",
                }
            ],
        }
    }


@dataclass
class FakeBmc:
    """A BMC model: one System managed by one Manager; knobs for each behaviour under test."""

    manufacturer: str = "Dell Inc."
    sessions: str = "ok"  # "ok", "absent", "refused" (401), "unsupported" (405)
    media_on: str = "Manager"  # "System" or "Manager"
    media_types: tuple[str, ...] = ("CD", "DVD")
    insert_action: bool = True
    reject_fields: tuple[str, ...] = ()  # InsertMedia members answered with 400 PropertyUnknown
    insert_error: dict[str, Any] | None = None  # a non-field 400 for every InsertMedia
    insert_task: list[str] = field(default_factory=list)  # TaskState sequence: InsertMedia answers 202 + monitor
    task_messages: list[dict[str, Any]] = field(default_factory=list)
    reset_values: list[str] | None = field(default_factory=lambda: ["On", "ForceOff", "ForceRestart", "Nmi"])
    reset_via_action_info: bool = False
    reject_boot_mode: bool = False
    secure_boot: str = "Disabled"
    cpus: int = 48
    memory_gib: float = 256
    boot_targets: tuple[str, ...] = ("None", "Pxe", "Cd", "Hdd", "BiosSetup")
    power: str = "Off"
    fetch_on_insert: bool = False  # download the image after answering, as asynchronous BMCs do
    requests: list[httpx.Request] = field(default_factory=list)
    inserts: list[dict[str, Any]] = field(default_factory=list)
    resets: list[str] = field(default_factory=list)
    patches: list[dict[str, Any]] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    boot: dict[str, Any] = field(default_factory=dict)
    image: str = ""
    inserted: bool = False
    _task_left: list[str] = field(default_factory=list)
    _pending: tuple[str, bool] = ("", False)
    fetchers: list[threading.Thread] = field(default_factory=list)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    # -- resources -------------------------------------------------------------------------------------------
    def root(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "@odata.id": "/redfish/v1/",
            "@odata.type": "#ServiceRoot.v1_11_0.ServiceRoot",
            "Id": "RootService",
            "RedfishVersion": "1.11.0",
            "Systems": {"@odata.id": "/redfish/v1/Systems"},
            "Managers": {"@odata.id": "/redfish/v1/Managers"},
            "Vendor": self.manufacturer.split()[0],
        }
        if self.sessions != "absent":
            doc["SessionService"] = {"@odata.id": "/redfish/v1/SessionService"}
            doc["Links"] = {"Sessions": {"@odata.id": "/redfish/v1/SessionService/Sessions"}}
        return doc

    def system(self) -> dict[str, Any]:
        reset: dict[str, Any] = {"target": f"{SYS}/Actions/ComputerSystem.Reset"}
        if self.reset_via_action_info:
            reset["@Redfish.ActionInfo"] = f"{SYS}/ResetActionInfo"
        elif self.reset_values is not None:
            reset["ResetType@Redfish.AllowableValues"] = self.reset_values
        doc: dict[str, Any] = {
            "@odata.id": SYS,
            "@odata.type": "#ComputerSystem.v1_20_0.ComputerSystem",
            "Id": SYS.rsplit("/", 1)[1],
            "Name": "System",
            "Manufacturer": self.manufacturer,
            "Model": "PowerEdge R650",
            "PowerState": self.power,
            "ProcessorSummary": {"Count": 2, "CoreCount": self.cpus // 2, "LogicalProcessorCount": self.cpus},
            "MemorySummary": {"TotalSystemMemoryGiB": self.memory_gib},
            "SecureBoot": {"@odata.id": f"{SYS}/SecureBoot"},
            "Boot": {
                "BootSourceOverrideEnabled": "Disabled",
                "BootSourceOverrideTarget": "None",
                "BootSourceOverrideMode": "UEFI",
                "BootSourceOverrideTarget@Redfish.AllowableValues": list(self.boot_targets),
                **self.boot,
            },
            "Links": {"ManagedBy": [{"@odata.id": MGR}]},
            "Actions": {"#ComputerSystem.Reset": reset},
        }
        if self.media_on == "System":
            doc["VirtualMedia"] = {"@odata.id": f"{SYS}/VirtualMedia"}
        return doc

    def manager(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "@odata.id": MGR,
            "@odata.type": "#Manager.v1_14_0.Manager",
            "Id": MGR.rsplit("/", 1)[1],
            "ManagerType": "BMC",
            "Manufacturer": self.manufacturer,
            "Model": "14G Monolithic",
        }
        if self.media_on == "Manager":
            doc["VirtualMedia"] = {"@odata.id": f"{MGR}/VirtualMedia"}
        return doc

    @property
    def media_base(self) -> str:
        return f"{SYS if self.media_on == 'System' else MGR}/VirtualMedia"

    def media(self, which: str) -> dict[str, Any]:
        path = f"{self.media_base}/{which}"
        cd = which == "CD"
        doc: dict[str, Any] = {
            "@odata.id": path,
            "@odata.type": "#VirtualMedia.v1_6_0.VirtualMedia",
            "Id": which,
            "MediaTypes": list(self.media_types) if cd else ["Floppy", "USBStick"],
            "Image": self.image if cd else None,
            "Inserted": self.inserted if cd else False,
            "WriteProtected": True,
            "ConnectedVia": "URI" if cd and self.inserted else "NotConnected",
        }
        if self.insert_action:
            doc["Actions"] = {
                "#VirtualMedia.InsertMedia": {"target": f"{path}/Actions/VirtualMedia.InsertMedia"},
                "#VirtualMedia.EjectMedia": {"target": f"{path}/Actions/VirtualMedia.EjectMedia"},
            }
        return doc

    # -- request handling --------------------------------------------------------------------------------------
    def authorised(self, request: httpx.Request) -> bool:
        if request.headers.get("X-Auth-Token") == TOKEN:
            return True
        auth = httpx.BasicAuth(USER, PASSWORD)
        expected = next(auth.auth_flow(httpx.Request("GET", "http://x"))).headers["Authorization"]
        return request.headers.get("Authorization") == expected

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path, method = request.url.path, request.method
        body = json.loads(request.content) if request.content else None
        if path == "/redfish/v1/" and method == "GET":
            return httpx.Response(200, json=self.root())
        if path == "/redfish/v1/SessionService/Sessions" and method == "POST":
            if self.sessions == "unsupported":
                return httpx.Response(405, json=message("Base.1.12.OperationNotAllowed", "not allowed"))
            if self.sessions == "refused" or body != {"UserName": USER, "Password": PASSWORD}:
                return httpx.Response(401, json=message("Base.1.12.NoValidSession", "no valid session"))
            return httpx.Response(
                201,
                headers={"X-Auth-Token": TOKEN, "Location": "/redfish/v1/SessionService/Sessions/77"},
                json={"@odata.id": "/redfish/v1/SessionService/Sessions/77", "Id": "77", "UserName": USER},
            )
        if not self.authorised(request):
            return httpx.Response(401, json=message("Base.1.12.InsufficientPrivilege", "unauthorised"))
        if method == "DELETE" and path.startswith("/redfish/v1/SessionService/Sessions/"):
            self.deleted.append(path)
            return httpx.Response(204)
        routes = {
            "/redfish/v1/Systems": lambda: {"Members": [{"@odata.id": SYS}], "Members@odata.count": 1},
            SYS: self.system,
            MGR: self.manager,
            f"{self.media_base}": lambda: {
                "Members": [{"@odata.id": f"{self.media_base}/{m}"} for m in ("RemovableDisk", "CD")]
            },
            f"{self.media_base}/CD": lambda: self.media("CD"),
            f"{self.media_base}/RemovableDisk": lambda: self.media("RemovableDisk"),
            f"{SYS}/SecureBoot": lambda: {
                "@odata.type": "#SecureBoot.v1_1_0.SecureBoot",
                "SecureBootEnable": self.secure_boot == "Enabled",
                "SecureBootCurrentBoot": self.secure_boot,
                "SecureBootMode": "UserMode",
            },
            f"{SYS}/ResetActionInfo": lambda: {
                "@odata.type": "#ActionInfo.v1_3_0.ActionInfo",
                "Parameters": [{"Name": "ResetType", "Required": True, "AllowableValues": self.reset_values}],
            },
        }
        if method == "GET" and path in routes:
            return httpx.Response(200, json=routes[path]())
        if method == "GET" and path == TASK:
            state = self._task_left.pop(0) if self._task_left else "Completed"
            status = "Critical" if state == "Exception" else "OK"
            code = 202 if state == "Running" else 200
            task = {"@odata.type": "#Task.v1_7_0.Task", "Id": "JID_001", "TaskState": state, "TaskStatus": status}
            if state == "Exception":
                task["Messages"] = self.task_messages
            if state == "Completed":
                self.image, self.inserted = self._pending
            return httpx.Response(code, json=task)
        if method == "POST" and path.endswith("/CD/Actions/VirtualMedia.InsertMedia"):
            return self.insert(body)
        if method == "PATCH" and path == f"{self.media_base}/CD" and not self.insert_action:
            self.patches.append(body)
            self.image, self.inserted = body.get("Image") or "", bool(body.get("Image"))
            return httpx.Response(204)
        if method == "POST" and path.endswith("/CD/Actions/VirtualMedia.EjectMedia"):
            self.image, self.inserted = "", False
            return httpx.Response(204)
        if method == "PATCH" and path == SYS:
            self.patches.append(body)
            boot = body["Boot"]
            if self.reject_boot_mode and "BootSourceOverrideMode" in boot:
                return httpx.Response(
                    400, json=message("Base.1.12.PropertyNotWritable", "BootSourceOverrideMode is read only")
                )
            self.boot.update(boot)
            return httpx.Response(204)
        if method == "POST" and path == f"{SYS}/Actions/ComputerSystem.Reset":
            kind = body["ResetType"]
            allowed = self.reset_values or []
            if kind not in allowed:
                return httpx.Response(400, json=message("Base.1.12.ActionParameterNotSupported", f"{kind} no"))
            self.resets.append(kind)
            self.power = "Off" if kind == "ForceOff" else "On"
            return httpx.Response(204)
        return httpx.Response(404, json=message("Base.1.12.ResourceNotFound", f"{path} not found"))

    def insert(self, body: dict[str, Any]) -> httpx.Response:
        self.inserts.append(body)
        rejected = [f for f in self.reject_fields if f in body]
        if rejected:
            return httpx.Response(
                400,
                json=message(
                    "Base.1.12.PropertyUnknown",
                    f"The property {rejected[0]} is not in the list of valid properties for the resource.",
                ),
            )
        if self.insert_error is not None:
            return httpx.Response(400, json=self.insert_error)
        if self.fetch_on_insert:
            url = body["Image"]

            def fetch() -> None:
                with httpx.Client() as c:
                    c.get(url, headers={"Range": "bytes=0-65535"})

            t = threading.Thread(target=fetch)
            t.start()
            self.fetchers.append(t)
        if self.insert_task:
            self._task_left = list(self.insert_task)
            self._pending = (body["Image"], True)
            return httpx.Response(202, headers={"Location": TASK}, json={"@odata.id": TASK})
        self.image, self.inserted = body["Image"], True
        return httpx.Response(204)


def client_for(bmc: FakeBmc, password: str = PASSWORD) -> RedfishClient:
    return RedfishClient(f"http://bmc.test{SYS}", USER, password, transport=bmc.transport())


@pytest.fixture
def cancel() -> CancelToken:
    return CancelToken()


# -- authentication --------------------------------------------------------------------------------------------------
def test_session_login_when_offered_and_deleted_on_close() -> None:
    bmc = FakeBmc()
    with client_for(bmc) as client:
        assert client.auth_mode == "session"
        client.find_system()
    later = bmc.requests[2:-1]  # after the root and the login, before the logout
    assert later and all(r.headers.get("X-Auth-Token") == TOKEN for r in later)
    assert all("Authorization" not in r.headers for r in bmc.requests)
    assert bmc.deleted == ["/redfish/v1/SessionService/Sessions/77"]


def test_session_deleted_when_the_work_fails() -> None:
    bmc = FakeBmc(media_types=("Floppy",))
    with pytest.raises(NoCdMedia), client_for(bmc) as client:
        _, system = client.find_system()
        client.find_cd_media(system)
    assert bmc.deleted == ["/redfish/v1/SessionService/Sessions/77"]


@pytest.mark.parametrize("sessions", ["absent", "unsupported", "refused"])
def test_basic_auth_when_no_usable_session(sessions: str) -> None:
    bmc = FakeBmc(sessions=sessions)
    with client_for(bmc) as client:
        assert client.auth_mode == "basic"
        client.find_system()
    assert bmc.deleted == []
    assert any(r.headers.get("Authorization", "").startswith("Basic ") for r in bmc.requests)


@pytest.mark.parametrize("sessions", ["ok", "absent"])
def test_wrong_password_is_auth_refused(sessions: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(AuthRefused) as err, client_for(FakeBmc(sessions=sessions), "wrong-password-1"):
        pass
    assert "wrong-password-1" not in err.value.render()
    assert "wrong-password-1" not in caplog.text and PASSWORD not in caplog.text


# -- discovery ------------------------------------------------------------------------------------------------------
def test_virtual_media_found_on_the_manager_and_cd_chosen(cancel: CancelToken) -> None:
    bmc = FakeBmc(media_on="Manager")
    with client_for(bmc) as client:
        _, system = client.find_system()
        assert client.quirks.name == "Dell iDRAC"  # from the System's Manufacturer
        media = client.find_cd_media(system)
        assert (media.id, media.under, media.path) == ("CD", "Manager", f"{MGR}/VirtualMedia/CD")
        client.insert_media(media, "http://jump:8080/t/a.iso", cancel=cancel)
    assert bmc.image == "http://jump:8080/t/a.iso" and bmc.inserted


def test_virtual_media_on_the_system_preferred() -> None:
    with client_for(FakeBmc(media_on="System")) as client:
        _, system = client.find_system()
        assert client.find_cd_media(system).under == "System"


def test_no_cd_capable_media_lists_what_exists() -> None:
    with client_for(FakeBmc(media_types=("USBStick",))) as client:
        _, system = client.find_system()
        with pytest.raises(NoCdMedia, match=r"RemovableDisk \(Floppy, USBStick\); CD \(USBStick\)"):
            client.find_cd_media(system)


def test_address_parsing() -> None:
    a = parse_address("10.0.0.5")
    assert (a.scheme, a.host, a.port, a.system_path) == ("https", "10.0.0.5", 443, "")
    b = parse_address("https://bmc-1.lab:8443/redfish/v1/Systems/1/")
    assert (b.host, b.port, b.system_path) == ("bmc-1.lab", 8443, "/redfish/v1/Systems/1")
    assert parse_address("bmc:8000").port == 8000
    with pytest.raises(ValueError):
        parse_address("ftp://x")


# -- InsertMedia ----------------------------------------------------------------------------------------------------
def test_insert_retries_with_a_minimal_body_after_a_property_error(cancel: CancelToken) -> None:
    bmc = FakeBmc(reject_fields=("Inserted", "WriteProtected"))
    with client_for(bmc) as client:
        _, system = client.find_system()
        media = client.insert_media(client.find_cd_media(system), "http://jump/t/a.iso", cancel=cancel)
    assert bmc.inserts == [
        {"Image": "http://jump/t/a.iso", "Inserted": True, "WriteProtected": True},
        {"Image": "http://jump/t/a.iso"},
    ]
    assert media.inserted


def test_supermicro_and_ami_start_minimal(cancel: CancelToken) -> None:
    bmc = FakeBmc(manufacturer="Supermicro", reject_fields=("Inserted",))
    with client_for(bmc) as client:
        _, system = client.find_system()
        client.insert_media(client.find_cd_media(system), "http://jump/t/a.iso", cancel=cancel)
    assert bmc.inserts == [{"Image": "http://jump/t/a.iso"}]
    ami = FakeBmc(manufacturer="American Megatrends International")
    with client_for(ami) as client:
        _, system = client.find_system()
        client.insert_media(client.find_cd_media(system), "https://jump/t/a.iso", cancel=cancel)
    assert ami.inserts == [{"Image": "https://jump/t/a.iso", "TransferProtocolType": "HTTPS"}]


def test_insert_refusal_carries_the_bmc_message(cancel: CancelToken) -> None:
    err_body = message("IDRAC.2.8.VRM0021", "Unable to connect to the remote share: the URL is not reachable.")
    bmc = FakeBmc(insert_error=err_body)
    with client_for(bmc) as client:
        _, system = client.find_system()
        with pytest.raises(InsertMediaRefused, match="Unable to connect to the remote share"):
            client.insert_media(client.find_cd_media(system), "http://jump/t/a.iso", cancel=cancel)
    assert len(bmc.inserts) == 1  # not a field error: no retry


def test_ilo_without_insert_action_patches_the_image(cancel: CancelToken) -> None:
    bmc = FakeBmc(manufacturer="HPE", insert_action=False)
    with client_for(bmc) as client:
        _, system = client.find_system()
        media = client.insert_media(client.find_cd_media(system), "http://jump/t/a.iso", cancel=cancel)
        assert media.inserted
        client.eject_media(media, cancel=cancel)
    assert bmc.patches[0]["Image"] == "http://jump/t/a.iso"
    assert bmc.patches[-1] == {"Image": None, "Inserted": False}


def test_generic_bmc_without_insert_action_is_refused(cancel: CancelToken) -> None:
    bmc = FakeBmc(manufacturer="Contoso", insert_action=False)
    with client_for(bmc) as client:
        _, system = client.find_system()
        assert client.quirks is GENERIC
        with pytest.raises(NoCdMedia, match="no InsertMedia action"):
            client.insert_media(client.find_cd_media(system), "http://jump/t/a.iso", cancel=cancel)


def test_insert_task_is_polled_to_completion(cancel: CancelToken) -> None:
    bmc = FakeBmc(insert_task=["Running", "Running", "Completed"])
    with client_for(bmc) as client:
        _, system = client.find_system()
        media = client.insert_media(client.find_cd_media(system), "http://jump/t/a.iso", cancel=cancel, poll=0.01)
    assert media.inserted
    assert sum(1 for r in bmc.requests if r.url.path == TASK) == 3


def test_failed_task_reports_its_messages(cancel: CancelToken) -> None:
    bmc = FakeBmc(
        insert_task=["Running", "Exception"],
        task_messages=[{"MessageId": "IDRAC.2.8.RAC0720", "Message": "Virtual Media is detached."}],
    )
    with client_for(bmc) as client:
        _, system = client.find_system()
        with pytest.raises(TaskFailed, match=r"Exception.*Virtual Media is detached"):
            client.insert_media(client.find_cd_media(system), "http://jump/t/a.iso", cancel=cancel, poll=0.01)


def test_task_polling_times_out(cancel: CancelToken) -> None:
    bmc = FakeBmc(insert_task=["Running"] * 1000)
    with client_for(bmc) as client:
        _, system = client.find_system()
        with pytest.raises(TaskFailed, match="did not finish"):
            client.insert_media(client.find_cd_media(system), "http://x/a.iso", cancel=cancel, timeout=0.2, poll=0.01)


# -- boot override --------------------------------------------------------------------------------------------------
def test_boot_override_once_cd_uefi_read_back() -> None:
    bmc = FakeBmc(manufacturer="Contoso")
    with client_for(bmc) as client:
        got = client.boot_once_from_cd(SYS)
    assert bmc.patches == [
        {
            "Boot": {
                "BootSourceOverrideTarget": "Cd",
                "BootSourceOverrideEnabled": "Once",
                "BootSourceOverrideMode": "UEFI",
            }
        }
    ]
    assert (got.target, got.enabled, got.mode) == ("Cd", "Once", "UEFI")


def test_boot_mode_rejected_is_retried_without_it_and_idrac_never_sends_it() -> None:
    bmc = FakeBmc(manufacturer="Contoso", reject_boot_mode=True)
    with client_for(bmc) as client:
        client.boot_once_from_cd(SYS)
    assert len(bmc.patches) == 2 and "BootSourceOverrideMode" not in bmc.patches[1]["Boot"]
    dell = FakeBmc()
    with client_for(dell) as client:
        client.find_system()
        client.boot_once_from_cd(SYS)
    assert dell.patches == [{"Boot": {"BootSourceOverrideTarget": "Cd", "BootSourceOverrideEnabled": "Once"}}]


def test_continuous_read_back_refused_without_the_quirk() -> None:
    bmc = FakeBmc(manufacturer="Contoso", boot={"BootSourceOverrideEnabled": "Continuous"})
    bmc_patch = bmc.handle

    def sticky(request: httpx.Request) -> httpx.Response:  # a BMC that keeps Continuous whatever it is told
        r = bmc_patch(request)
        bmc.boot["BootSourceOverrideEnabled"] = "Continuous"
        return r

    client = RedfishClient(f"http://bmc.test{SYS}", USER, PASSWORD, transport=httpx.MockTransport(sticky))
    with client, pytest.raises(RedfishError, match="Continuous"):
        client.boot_once_from_cd(SYS)


def test_supermicro_uses_usbcd_when_cd_is_not_offered() -> None:
    bmc = FakeBmc(manufacturer="Supermicro", boot_targets=("None", "Pxe", "Hdd", "UsbCd"))
    with client_for(bmc) as client:
        client.find_system()
        assert client.boot_once_from_cd(SYS).target == "UsbCd"
    generic = FakeBmc(manufacturer="Contoso", boot_targets=("None", "Pxe", "Hdd"))
    with client_for(generic) as client, pytest.raises(RedfishError, match="no CD boot override"):
        client.boot_once_from_cd(SYS)


# -- reset ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("state", "allowed", "expected"),
    [
        ("Off", ["On", "ForceOff", "ForceRestart"], "On"),
        ("Off", ["ForceOn", "ForceOff"], "ForceOn"),
        ("Off", ["PushPowerButton"], "PushPowerButton"),
        ("PoweringOff", ["On"], "On"),
        ("On", ["On", "ForceOff", "ForceRestart", "GracefulRestart"], "ForceRestart"),
        ("On", ["On", "GracefulRestart"], "GracefulRestart"),
        ("On", ["PowerCycle", "GracefulRestart"], "PowerCycle"),
        ("On", ["On", "ForceOff"], "ForceOff+On"),
        ("On", None, "ForceRestart"),
        ("Off", None, "On"),
    ],
)
def test_reset_type_chosen_from_allowable_values(state: str, allowed: list[str] | None, expected: str) -> None:
    assert choose_reset(state, allowed) == expected


def test_reset_without_a_usable_type() -> None:
    with pytest.raises(RedfishError, match="allows only Nmi"):
        choose_reset("On", ["Nmi"])


def test_reset_uses_action_info_and_falls_back_to_off_then_on(cancel: CancelToken) -> None:
    bmc = FakeBmc(power="On", reset_values=["On", "ForceOff"], reset_via_action_info=True)
    with client_for(bmc) as client:
        assert client.reset(SYS, cancel=cancel, poll=0.01) == "ForceOff+On"
    assert bmc.resets == ["ForceOff", "On"] and bmc.power == "On"


# -- quirks lookup --------------------------------------------------------------------------------------------------
def test_quirks_keyed_by_what_the_bmc_says() -> None:
    assert quirks_for(BmcIdentity(vendor="HPE")).name == "HPE iLO"
    assert quirks_for(BmcIdentity(oem_keys=("Dell",))).name == "Dell iDRAC"
    assert quirks_for(BmcIdentity(manufacturers=("Supermicro",))).name == "Supermicro"
    assert quirks_for(BmcIdentity(models=("MegaRAC SP-X",))).name == "AMI MegaRAC"
    assert quirks_for(BmcIdentity(manufacturers=("Sushy Emulator",))).name == "sushy-tools emulator"
    assert quirks_for(BmcIdentity(manufacturers=("Contoso",))) is GENERIC
    assert len({q.name for q in QUIRKS}) == len(QUIRKS)


# -- the boot job with an asynchronous BMC ----------------------------------------------------------------------------
@pytest.fixture
def iso(tmp_path: Path) -> Path:
    path = tmp_path / "palette.iso"
    path.write_bytes(os.urandom(256 * 1024))
    return path


@pytest.fixture
def server(iso: Path) -> Iterator[IsoServer]:
    with IsoServer() as s:
        yield s


def boot_job(bmc: FakeBmc, url: str, server: IsoServer, tmp_path: Path, **kw: Any) -> RedfishBootJob:
    return RedfishBootJob(
        "node-1",
        Bmc(f"http://127.0.0.1{SYS}", USER, SecretRef("bmc")),
        PASSWORD,
        url,
        trust=TrustStore(tmp_path),
        confirm=None,
        iso_server=server,
        transport=bmc.transport(),
        **{"timeouts": QUICK, **kw},
    )


def test_boot_job_succeeds_once_the_bmc_reads_the_iso(server: IsoServer, iso: Path, tmp_path: Path) -> None:
    url = server.publish(iso)
    bmc = FakeBmc(fetch_on_insert=True)
    # The job ends as soon as the BMC's read is seen; the long fetch timeout only bounds a broken run.
    job = boot_job(bmc, url, server, tmp_path, timeouts=RedfishTimeouts(fetch=60, power=5, poll=0.02))
    progress = Progress()
    progress.add_task(job.id, job.name, "boot")
    facts = job.run(progress.root().child(0, 1, task=job.id), CancelToken())
    for t in bmc.fetchers:
        t.join(10)
    assert facts is not None
    assert facts["system"] == SYS and facts["virtual_media"] == f"{MGR}/VirtualMedia/CD" and facts["reset"] == "On"
    # The job returns once the BMC's request arrived, possibly before its first bytes went out: the fact is a
    # snapshot bounded by what the server ends up having sent that BMC.
    # (The server counts a chunk once its send returns, which can trail the BMC's read by a moment.)
    deadline = time.monotonic() + 10
    while (served := server.served("palette.iso").get("127.0.0.1", 0)) == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert served > 0 and 0 <= facts["iso_bytes_read"] <= served
    assert server.fetched("palette.iso", {"127.0.0.1"})
    assert bmc.deleted  # the session was closed


def test_boot_job_detects_a_bmc_that_never_fetches(server: IsoServer, iso: Path, tmp_path: Path) -> None:
    url = server.publish(iso)
    bmc = FakeBmc(fetch_on_insert=False)  # accepts InsertMedia, boots, never downloads
    job = boot_job(bmc, url, server, tmp_path)
    with pytest.raises(IsoNotFetched) as err:
        job.run(Progress().root(), CancelToken())
    assert "never requested" in err.value.message and "after InsertMedia and the reset" in err.value.message
    assert url.split("/")[3] not in err.value.render()
    assert bmc.resets == ["On"] and bmc.deleted


def test_never_fetched_names_other_clients(server: IsoServer, iso: Path, tmp_path: Path) -> None:
    url = server.publish(iso)
    assert httpx.get(url, headers={"Range": "bytes=0-9"}).status_code == 206  # someone else, from 127.0.0.1
    bmc = FakeBmc(fetch_on_insert=False)
    job = boot_job(bmc, url, server, tmp_path, fetch_addresses=["192.0.2.10"])  # the BMC fetches from here
    with pytest.raises(IsoNotFetched, match=r"saw requests only from 127\.0\.0\.1"):
        job.run(Progress().root(), CancelToken())


def test_boot_job_refuses_a_url_its_server_does_not_serve(server: IsoServer, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not served"):
        boot_job(FakeBmc(), "http://elsewhere/a.iso", server, tmp_path)


# -- preflight checks -------------------------------------------------------------------------------------------------
def checks_of(bmc: FakeBmc, tmp_path: Path) -> dict[str, Any]:
    results = run_checks(
        "node-1",
        Bmc(f"http://127.0.0.1{SYS}", USER, SecretRef("bmc")),
        PASSWORD,
        trust=TrustStore(tmp_path),
        confirm=None,
        transport=bmc.transport(),
    )
    assert [r.check for r in results] == [c.id for c in CHECKS]
    return {r.check: r for r in results}


def test_checks_pass_on_a_capable_server(tmp_path: Path) -> None:
    got = checks_of(FakeBmc(), tmp_path)
    assert all(r.outcome is Outcome.PASS for r in got.values())
    assert got["redfish.resources"].message == "48 CPUs (LogicalProcessorCount), 256 GiB"
    assert got["redfish.virtual-media"].details["path"] == f"{MGR}/VirtualMedia/CD"


def test_checks_fail_on_legacy_boot_secure_boot_and_small_servers(tmp_path: Path) -> None:
    bmc = FakeBmc(secure_boot="Enabled", cpus=4, memory_gib=8, boot={"BootSourceOverrideMode": "Legacy"})
    got = checks_of(bmc, tmp_path)
    assert got["redfish.reachable"].outcome is Outcome.PASS
    assert got["redfish.uefi"].outcome is Outcome.FAIL and "Legacy" in got["redfish.uefi"].message
    assert got["redfish.secure-boot"].outcome is Outcome.FAIL
    assert got["redfish.resources"].outcome is Outcome.FAIL
    assert got["redfish.resources"].message == "4 CPUs < 8; 8 GiB memory < 16 GB"
    # 15.6 GiB is what 16 GB of DIMMs often reports: within the tolerance
    assert checks_of(FakeBmc(memory_gib=15.6), tmp_path)["redfish.resources"].outcome is Outcome.PASS


def test_checks_without_cd_media_or_reachability(tmp_path: Path) -> None:
    got = checks_of(FakeBmc(media_types=("USBStick",)), tmp_path)
    assert got["redfish.virtual-media"].outcome is Outcome.FAIL
    refused = FakeBmc(sessions="absent")
    results = run_checks(
        "node-1",
        Bmc(f"http://127.0.0.1{SYS}", USER, SecretRef("bmc")),
        "wrong-password-9",
        trust=TrustStore(tmp_path),
        confirm=None,
        transport=refused.transport(),
    )
    assert results[0].outcome is Outcome.FAIL and results[0].remediation
    assert {r.outcome for r in results[1:]} == {Outcome.ERROR}
    # A refused password is fixed where it is typed: the Credentials page, not the Provider page.
    assert results[0].to_dict()["step"] == "credentials" and "Credentials page" in results[0].remediation
    assert CheckResult.from_dict(results[0].to_dict()).to_dict()["step"] == "credentials"  # kept through the report

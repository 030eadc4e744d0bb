"""The lab's timeline of appliance work: what a simulated machine records, and how a step window is covered."""

from __future__ import annotations

from wizard.lab.clock import ManualClock
from wizard.lab.machine import Machine, Stage, Timings
from wizard.lab.timeline import Interval, Timeline, covered


def test_covered_is_the_union_clipped_to_the_window() -> None:
    spans = [
        Interval("a", "n1", 0, 4),
        Interval("a", "n2", 2, 6),
        Interval("b", "n1", 8, 9),
        Interval("a", "x", 20, 30),
    ]
    assert covered(spans, 1, 10) == 5 + 1  # 1–6 once, however many nodes overlap, and 8–9
    assert covered(spans, 6, 8) == 0
    assert covered([], 0, 10) == 0


def test_a_repeated_key_records_once() -> None:
    timeline = Timeline()
    for _ in range(3):
        timeline.record("content-sync", "n2", 5, 10, key=("content-sync", "n2", 5))
    timeline.record("cluster", "n1", 1, 2)
    assert [i.category for i in timeline.intervals()] == ["content-sync", "cluster"]
    assert timeline.intervals(["cluster"]) == [Interval("cluster", "n1", 1, 2)]


def test_a_machine_records_its_install_and_reboots_as_they_happen() -> None:
    clock = ManualClock(1000.0)
    t = Timings()
    machine = Machine("n1", clock=clock, speed=10.0, timings=t, assumed_media="automatic")
    machine.timeline = timeline = Timeline()
    s = t.scaled(10.0)
    machine.insert_media("file:///iso")
    machine.power_on()
    assert timeline.intervals() == []  # GRUB's menu counts down: nothing installs yet
    # GRUB's countdown runs out into the automatic installer: the install is the appliance's work from power-on.
    clock.set(1000.0 + s.firmware + 30.0)
    _, menu, _ = machine.console_state()
    assert menu is not None and menu.chosen_at is not None
    install_end = menu.chosen_at + s.installer_boot + s.install + s.finish
    assert timeline.intervals() == [Interval("install", "n1", 1000.0, install_end)]
    # The post-install reboot is recorded when it happens, until the Local UI answers in the installed system.
    clock.set(install_end + 0.1)
    assert machine.stage is Stage.REBOOTING
    back = install_end + s.reboot + s.firmware + s.os_boot + s.services
    assert timeline.intervals(["reboot"]) == [Interval("reboot", "n1", install_end, back)]
    clock.set(back)
    assert machine.local_ui_up
    # A reboot the Local UI asks for (user data) is recorded from the request until the Local UI is back.
    down, up = machine.reboot()
    assert timeline.intervals(["reboot"])[-1] == Interval("reboot", "n1", back, up) and down < up
    clock.set(up)
    assert machine.local_ui_up


def test_a_failing_install_records_no_work_to_wait_for() -> None:
    clock = ManualClock()
    machine = Machine("n1", clock=clock, speed=10.0, fail_install=True, assumed_media="automatic")
    machine.timeline = timeline = Timeline()
    machine.insert_media("file:///iso")
    machine.power_on()
    clock.advance(60.0)
    assert machine.console_state()[1] is not None  # the automatic entry was chosen, and failed
    assert timeline.intervals() == []

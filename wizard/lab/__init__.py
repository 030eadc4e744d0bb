"""The rehearsal lab: simulated appliance nodes on loopback, faithful to the appliance's published behaviour.

It lets the installer's appliance steps run end to end without hardware. Nothing here imports Qt.
"""

from wizard.lab.clock import ManualClock
from wizard.lab.lab import Lab, LabNode
from wizard.lab.localui import LocalUIServer
from wizard.lab.node import LocalUIError, LoginPolicy, NodeState

__all__ = ["Lab", "LabNode", "LocalUIError", "LocalUIServer", "LoginPolicy", "ManualClock", "NodeState"]

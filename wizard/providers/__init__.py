"""Ways to boot the nodes from the appliance ISO: vSphere, bare metal through Redfish, MAAS, or by hand.

Nothing here imports Qt. Each provider translates its library's exceptions into ``wizard.core.errors.WizardError``
at its boundary, so steps and pages only ever see one error type.
"""

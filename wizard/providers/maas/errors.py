"""What MAAS can refuse, in the operator's words."""

from __future__ import annotations

from collections.abc import Mapping

from wizard.core.errors import WizardError


class MaasSelectionError(WizardError):
    """Some requested machines cannot be used; ``problems`` maps each node reference to its reason."""

    def __init__(self, problems: Mapping[str, str]) -> None:
        self.problems = dict(problems)
        count = len(self.problems)
        super().__init__(
            "MAAS machines not usable",
            f"{count} machine{'s' if count != 1 else ''} cannot be used",
            details="\n".join(f"{ref}: {why}" for ref, why in self.problems.items()),
            remediation="use machines that are Ready in MAAS (or already allocated to you), or fix each one as noted",
        )

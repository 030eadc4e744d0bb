"""The network page: the cluster's virtual IP, name and time servers, the proxy the nodes use, and each node's
bonds and VLANs (:mod:`wizard.ui.pages.nodenet`)."""

from __future__ import annotations

import re
from collections.abc import Callable

from PySide6.QtWidgets import QFormLayout, QGroupBox, QVBoxLayout, QWidget

from wizard.core.cancel import CancelToken
from wizard.core.paths import AppPaths
from wizard.core.problems import Problem
from wizard.core.secrets import SecretStore
from wizard.core.trust import TrustRequest
from wizard.ui.forms import InputPage, Kind, ProjectDocument, claim
from wizard.ui.pages.nodenet import NodeNetworkEditor
from wizard.ui.widgets import heading, paragraph

_NODE_NETWORK = re.compile(r"^nodes\[\d+\]\.network(\.|\[|$)")


class NetworkPage(InputPage):
    title = "Network"
    prefixes = ("network",)

    def __init__(
        self,
        document: ProjectDocument,
        parent: QWidget | None = None,
        *,
        secrets: SecretStore | None = None,
        ask: Callable[[TrustRequest, CancelToken | None], bool] | None = None,
        paths: Callable[[], AppPaths | None] = lambda: None,
    ) -> None:
        super().__init__(document, parent)
        self.title = self.tr("Network")
        tr = self.tr
        many = tr("separate several with commas")

        cluster = QGroupBox(tr("Cluster"), self)
        form = QFormLayout(cluster)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.vip = self.add_field(
            form, tr("Virtual IP (VIP)"), ("network", "vip"), placeholder=tr("a free address in the nodes' subnet")
        )
        self.dns = self.add_field(
            form, tr("DNS servers"), ("network", "dns"), kind=Kind.LIST, placeholder=f"10.10.0.2, 10.10.0.3 ({many})"
        )
        self.search = self.add_field(
            form,
            tr("Search domains"),
            ("network", "search_domains"),
            kind=Kind.LIST,
            placeholder=f"example.com ({many})",
        )
        self.ntp = self.add_field(
            form, tr("NTP servers"), ("network", "ntp"), kind=Kind.LIST, placeholder=f"ntp.example.com ({many})"
        )

        proxy = QGroupBox(tr("Proxy (leave empty for direct connections)"), self)
        form = QFormLayout(proxy)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        base = ("network", "proxy")
        self.http = self.add_field(
            form, tr("HTTP proxy"), (*base, "http"), prune=1, placeholder="http://proxy.example.com:3128"
        )
        self.https = self.add_field(
            form, tr("HTTPS proxy"), (*base, "https"), prune=1, placeholder="http://proxy.example.com:3128"
        )
        self.no_proxy = self.add_field(
            form,
            tr("No proxy for"),
            (*base, "no_proxy"),
            kind=Kind.LIST,
            prune=1,
            placeholder=f".example.com, 10.0.0.0/8 ({many})",
        )

        layout = QVBoxLayout(self)
        layout.addWidget(heading(tr("Network"), self))
        layout.addWidget(
            paragraph(
                tr(
                    "The VIP is the cluster's address: a free IPv4 address in the nodes' subnet. Every node gets "
                    "these DNS, NTP and proxy settings."
                ),
                self,
            )
        )
        self.node_network = NodeNetworkEditor(document, secrets, self, paths=paths, ask=ask)
        layout.addWidget(self.page_message)
        layout.addWidget(cluster)
        layout.addWidget(proxy)
        layout.addWidget(self.node_network)
        layout.addStretch(1)
        self.populate()

    def populate(self) -> None:
        super().populate()
        self.node_network.refresh_nodes()

    def owned_problems(self) -> list[Problem]:
        """The network section's, and every node's own network (``nodes[i].network``)."""
        mine = super().owned_problems()
        return mine + [p for p in self.document.problems_under(("nodes",)) if _NODE_NETWORK.match(p.path)]

    def show_problems(self) -> None:
        """Fields show theirs; the node networking editor shows the nodes' network problems next to its form."""
        problems = self.owned_problems()
        nodes = [p for p in problems if _NODE_NETWORK.match(p.path)]
        owned, rest = claim([p for p in problems if p not in nodes], [(f, f.claims) for f in self.fields])
        for field in self.fields:
            field.show_problems(owned.get(field, []))
        self.show_page_problems(rest)
        self.node_network.show_problems(nodes)
        self.changed.emit()

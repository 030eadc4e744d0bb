"""The network page: the cluster's virtual IP, name and time servers, and the proxy the nodes use."""

from __future__ import annotations

from PySide6.QtWidgets import QFormLayout, QGroupBox, QVBoxLayout, QWidget

from wizard.ui.forms import InputPage, Kind, ProjectDocument
from wizard.ui.widgets import heading, paragraph


class NetworkPage(InputPage):
    title = "Network"
    prefixes = ("network",)

    def __init__(self, document: ProjectDocument, parent: QWidget | None = None) -> None:
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
        layout.addWidget(self.page_message)
        layout.addWidget(cluster)
        layout.addWidget(proxy)
        layout.addStretch(1)
        self.populate()

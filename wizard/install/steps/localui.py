"""The steps that work through the nodes' Local UI: replace the default passwords, link the nodes, upload the content
bundle, create the cluster."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from wizard.appliance.bundles import TRANSFER_SFTP, SftpTransfer, UploadContentJob
from wizard.appliance.cluster import ClusterRequest, CreateClusterJob
from wizard.appliance.guards import content_needs_upload
from wizard.appliance.hostsync import ContentOnNodesJob
from wizard.appliance.link import LinkJob
from wizard.appliance.password import ReplacePasswordJob
from wizard.appliance.sftpupload import SSHTarget
from wizard.appliance.staging import DEFAULT_REMOTE_DIR, StagingPlan
from wizard.appliance.versions import GA_FROM
from wizard.core.jobs import Job, Step, StepContext, StepKind
from wizard.core.journal import JOB_DONE
from wizard.core.problems import Problem
from wizard.core.project import Node, Project, join_path
from wizard.core.trust import TrustStore
from wizard.install.steps.appliance import detected, upload_problems
from wizard.install.steps.media import identity_seed
from wizard.install.steps.nodes import (
    DEFAULT_PASSWORD,
    Pacing,
    connector,
    endpoint,
    leader_and_followers,
    session_folder,
)

KUBECONFIG = "kubeconfig"


def kubeconfig_path(ctx: StepContext) -> Path:
    """Where the install saved the admin kubeconfig (an upgrade saves the cluster's again there)."""
    created = ctx.result("cluster/create")
    if created.get("kubeconfig"):
        return Path(str(created["kubeconfig"]))
    return ctx.project.cluster.kubeconfig or session_folder(ctx) / KUBECONFIG


def transfer_mode(project: Project) -> str:
    """How bundles reach the nodes: ``files.transfer`` (``direct`` | ``sftp``)."""
    return project.files.transfer.value


def staging_dir(project: Project) -> str:
    """Where SFTP staging puts bundles on a node: ``files.staging_dir``, else a folder in the login's home."""
    return project.files.staging_dir or DEFAULT_REMOTE_DIR


def sftp_transfer(ctx: StepContext, node: Node) -> SftpTransfer:
    """Plain values for staging onto ``node``: its SSH address, login (the wizard's key on a seeded node) and pinned
    host key."""
    from wizard.install.steps.install import ssh_credentials  # install imports the boot step; keep this module light

    target = SSHTarget(
        node.ip,
        node.ssh_port,
        ssh_credentials(ctx, node),
        TrustStore(ctx.paths.config),
        ctx.confirm,
        expected_fingerprint=node.ssh_host_key,
    )
    return SftpTransfer(target, StagingPlan(remote_dir=staging_dir(ctx.project)))


class LinkStep(Step):
    id = "link"
    title = "Link the nodes"
    kind = StepKind.INSTALL
    weight = 0.5
    expected = 120.0

    def __init__(self, pacing: Pacing | None = None) -> None:
        self.pacing = pacing or Pacing()

    def jobs(self, ctx: StepContext) -> list[Job]:
        leader, followers = leader_and_followers(ctx)
        return [
            LinkJob(
                endpoint(ctx, leader),
                [endpoint(ctx, n) for n in followers],
                connector(ctx, self.pacing),
                poll_interval=self.pacing.link_poll,
                ready_timeout=self.pacing.link_ready_timeout,
            )
        ]


class ContentStep(Step):
    """Upload the content bundle to the leader, unless the nodes hold the content already (a full ISO, before
    4.9.36: then confirm it is on every host); without a bundle and without content there is nothing to do here (the
    appliance step has said so)."""

    id = "content"
    title = "Upload the content bundle"
    kind = StepKind.INSTALL
    weight = 1.0
    #: The upload, then "≥5 min" until every host shows the content synced (the appliance docs).
    expected = 10 * 60.0

    def expected_duration(self, ctx: StepContext) -> float:
        return super().expected_duration(ctx) if ctx.project.files.content_bundle is not None else 0.0

    def __init__(self, pacing: Pacing | None = None) -> None:
        self.pacing = pacing or Pacing()

    def problems(self, ctx: StepContext) -> list[Problem]:
        return upload_problems(ctx, content=True)

    def jobs(self, ctx: StepContext) -> list[Job]:
        files = ctx.project.files
        bundle = files.content_bundle
        identity = detected(ctx)
        if not content_needs_upload(identity):
            leader, _ = leader_and_followers(ctx)
            why = f"{identity.label}: the content came with the ISO"
            pace = self.pacing
            return [
                ContentOnNodesJob(
                    endpoint(ctx, leader),
                    connector(ctx, pace),
                    why=why,
                    poll_interval=pace.content_poll,
                    timeout=pace.content_sync_timeout,
                )
            ]
        if bundle is None:
            return []
        leader, _ = leader_and_followers(ctx)
        transfer = sftp_transfer(ctx, leader) if transfer_mode(ctx.project) == TRANSFER_SFTP else None
        return [
            UploadContentJob(
                endpoint(ctx, leader),
                bundle.path,
                connector(ctx, self.pacing),
                signature=bundle.signature,
                public_key=files.public_key,
                poll_interval=self.pacing.content_poll,
                sync_timeout=self.pacing.content_sync_timeout,
                transfer=transfer,
            )
        ]


class ClusterStep(Step):
    """Create the management cluster on the leader and save its kubeconfig (owner-only) in the session folder,
    or where ``cluster.kubeconfig`` says."""

    id = "cluster"
    title = "Create the management cluster"
    kind = StepKind.INSTALL
    weight = 4.0
    expected = 25 * 60.0  # "20–30 min" (the appliance docs)

    def __init__(self, pacing: Pacing | None = None) -> None:
        self.pacing = pacing or Pacing()

    def problems(self, ctx: StepContext) -> list[Problem]:
        """A two-node cluster needs ``isTwoNodeCluster``, which came with the newer Local UI API: sent to an appliance
        that ignores it, two etcd members would have no quorum. A node with a machine pool joins a cluster that
        exists (``palette-wizard add-node``)."""
        created = ctx.journal.job("cluster/create")
        if created is None or created.get("status") != JOB_DONE:
            pooled = [(i, n) for i, n in enumerate(ctx.project.nodes) if n.pool]
            if pooled:
                return [
                    Problem(
                        f"nodes[{i}].pool",
                        f"{n.name} joins {n.pool}, a pool of a running cluster",
                        f"leave {n.name} out until the cluster runs, then add it with `palette-wizard add-node`",
                    )
                    for i, n in pooled
                ]
        if not ctx.project.cluster.two_node:
            return []
        identity = detected(ctx)
        if identity.version is not None and not identity.before(GA_FROM):
            return []
        which = identity.label if identity.version is not None else "an appliance of unknown version"
        return [
            Problem(
                "cluster.two_node",
                f"{which} does not offer two-node clusters (isTwoNodeCluster came with the {GA_FROM} API)",
                f"use one or three nodes, or an appliance of {GA_FROM} or newer",
            )
        ]

    def jobs(self, ctx: StepContext) -> list[Job]:
        project = ctx.project
        settings = project.cluster
        leader, _ = leader_and_followers(ctx)
        request = ClusterRequest(
            name=project.name,
            vip=project.network.vip,
            ntp_servers=project.network.ntp,
            ssh_keys=settings.ssh_keys,
            values=dict(settings.variables),
            secrets={
                name: ctx.secrets.require(ref, join_path("cluster.secret_variables", name))
                for name, ref in settings.secret_variables
            },
            two_node=settings.two_node,
        )
        pace = self.pacing
        return [
            CreateClusterJob(
                endpoint(ctx, leader),
                request,
                connector(ctx, pace),
                settings.kubeconfig or session_folder(ctx) / KUBECONFIG,
                poll_interval=pace.cluster_poll,
                expected_duration=pace.cluster_expected,
                timeout=pace.cluster_timeout,
                outage_timeout=pace.cluster_outage_timeout,
            )
        ]


class PasswordStep(Step):
    """Replace the appliance's default password on every node with ``appliance.password`` (from the keyring)."""

    id = "password"
    title = "Replace the default passwords"
    kind = StepKind.INSTALL
    weight = 0.5
    expected = 30.0

    def __init__(self, pacing: Pacing | None = None) -> None:
        self.pacing = pacing or Pacing()

    def jobs(self, ctx: StepContext) -> list[Job]:
        ref = ctx.project.appliance.password
        if ref is None:
            return []
        new = ctx.secrets.require(ref, "appliance.password")
        conn = connector(ctx, self.pacing)
        seeded = identity_seed(ctx)  # the seed set the password already
        jobs: list[Job] = [
            ReplacePasswordJob(
                replace(endpoint(ctx, node), password=DEFAULT_PASSWORD), new, conn, step=self.id, seeded=seeded
            )
            for node in ctx.project.nodes
        ]
        self.parallel = max(1, len(jobs))
        return jobs

"""The pipeline's step ids in run order, alone in a module with no imports: the command-line parser offers them
for ``--until`` without loading the engine, and :func:`wizard.install.steps.pipeline` builds exactly these steps."""

STEP_IDS = (
    "credentials",
    "verify",
    "preflight",
    "machines",
    "media",
    "boot",
    "install",
    "postboot",
    "eject",
    "password",
    "configure",
    "network",
    "appliance",
    "link",
    "content",
    "cluster",
    "console",
    "activate",
    "packs",
    "validate",
)

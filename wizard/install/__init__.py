"""The install pipeline: the steps that compose provider and appliance jobs into one install, and what acts on a
whole session (abort, support bundle, discovery). It sits above ``wizard.core``, ``wizard.providers`` and
``wizard.appliance`` and below the front ends (``wizard.headless``, ``wizard.ui``, ``wizard.cli``)."""

"""``python -m wizard`` is the same as the ``palette-wizard`` command."""

from wizard.cli import main

raise SystemExit(main())

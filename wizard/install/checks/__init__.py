"""Checks that need a live node or provider session (the generic, peer-free checks live in ``wizard.core.checks``)."""

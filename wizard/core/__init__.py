"""The Qt-free engine: project model, validation, steps, jobs, progress, journal, secrets, logging.

Nothing under ``wizard.core`` may import Qt; ruff's banned-import rule and a test enforce it.
"""

"""The PySide6 desktop wizard: a thin shell over the Qt-free engine in :mod:`wizard.core`.

Qt is imported only below this package, so the engine, the providers and the headless runner stay usable on
hosts without a display or the Qt runtime.
"""

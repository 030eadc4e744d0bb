"""Palette Appliance Wizard: installs self-hosted Palette from the appliance ISO."""

__version__ = "0.1.0"
APP_NAME = "palette-wizard"

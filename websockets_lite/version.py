"""The version of websockets_lite (read by the build from this file)."""

__version__ = "0.2.0"

"""govlab: row- and column-level security over lakehouse tables, served as masked search."""

__version__ = "0.1.0"

"""An out-of-tree example plugin for mlps."""

__version__ = "0.1.0"

"""Thin napari views over the core. Importing this package imports nothing heavy."""

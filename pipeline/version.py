"""The package version, in a module that imports nothing: :mod:`pipeline.manifest` records it
without importing the package ``__init__`` (which imports :mod:`pipeline.run`: an import cycle)."""
__version__ = "0.1.0"

"""The package version, in a module of its own so that anything can import it without
importing the package's public API (cache keys and result files carry it)."""

__version__ = "0.1.0"

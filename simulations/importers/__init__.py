"""Importers that turn third-party recordings into recorded incidents (one module per source)."""

"""Importers that turn third-party recordings into recorded incidents (one package per source)."""

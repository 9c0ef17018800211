"""Benchmarks of Garrison run as scripts (`python -m bench.<name>`), not as tests: they print
figures and write JSON rather than assert."""

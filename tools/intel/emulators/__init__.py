"""Emulators of threat-intelligence vendor APIs, served on loopback in tests and simulations."""

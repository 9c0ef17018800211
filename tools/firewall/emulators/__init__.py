"""Emulators of the firewall vendors' APIs (ASGI apps with real state and fault knobs), served on
loopback so the real adapters can be tested and simulated against them."""

"""Emulators of the ticketing vendors' APIs (Jira Cloud, ServiceNow), for tests and simulations."""

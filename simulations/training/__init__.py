"""Training mode (`garrison train`): an analyst decides the approvals of recorded incidents replayed
as if live, and is scored against each incident's truth and against the agents."""

"""Shadow runs: a candidate version (another knowledge folder, other settings, another install)
replayed beside the current one on the same recorded incidents, side effects off, and where the
two disagree (docs/shadow.md)."""

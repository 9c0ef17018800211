"""The risk policy: a versioned YAML document of weights, thresholds, approval tiers and deny
rules (`model.py`), and the pure function that turns a proposed action and the facts about its
target into allow, needs-approval or deny (`evaluate.py`). It runs inside workflow code, so nothing
here does I/O except `load_policy`, which the composition roots call."""

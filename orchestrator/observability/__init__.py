"""The operators' instruments: health (`health.py`), metrics (`metrics.py`), logs (`logs.py`)
and traces (`tracing.py`). Each module imports its third-party library itself, so a command
that uses none of them (`garrison --help`) loads none of them."""

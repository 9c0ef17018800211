"""Sigma rules run by the importer itself: compiled once with pySigma, evaluated with SQLite.

`rules` reads SigmaHQ rules (a tarball or a folder of `.yml`), converts each with pySigma's SQLite
backend under the Sysmon and Windows log-source pipelines, and caches the compiled set as JSON keyed
by the rules' sha256 and the toolchain versions. `engine` streams one recording's events into a
temporary SQLite table and runs the relevant rules over it, giving the same `SigmaHit`s the OTRF
importer used to read from the precomputed `sigma_alerts.jsonl` (now kept only as a reference).
Nothing is imported here: `engine` reads events with the OTRF importer's modules, and the OTRF
importer builds an engine, so each side imports the other's modules, not this package.
"""

"""`python -m simulations.importers.otrf --labels ... --datasets ... --out ...`."""

from simulations.importers.otrf.importer import main

raise SystemExit(main())

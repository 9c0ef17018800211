"""The playbook authors' kit behind `garrison playbook` (orchestrator/cli_playbook.py): load a
playbook by id, folder, file or CACAO document (`loading.py`), check it (`validate.py`), draw it
(`show.py`), scaffold a new one from the templates shipped here (`scaffold.py`), run it on a
recorded incident with the in-memory twins and the policy gate but no side effect (`dryrun.py`),
and the test kit pytest uses to do the same (`testing.py`)."""

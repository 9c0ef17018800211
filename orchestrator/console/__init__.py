"""The analysts' web console, served by `garrison server` under /console (docs/analysts.md).

Server-rendered pages (Jinja2, autoescaped) with one stylesheet and one small script shipped in
the package: the incidents list, one incident's page and timeline, the approvals queue and its
decisions through `ApprovalService`. Sign-in with the approver directory's local accounts
(`passwords.py`), server-side sessions (`sessions.py`), CSRF on every form (`auth.py`)."""

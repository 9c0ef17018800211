"""Pull mode: bounded polls of the vendors' alert APIs (CrowdStrike Falcon Alerts v2, Microsoft
Graph security alerts_v2), run by `AlertPollWorkflow` on a Temporal Schedule per source.

`cursor.py` holds where a source was read up to, `base.py` one poll (walk the window, normalise,
hand to the sink, dead-letter what cannot be read, then advance the cursor), `falcon.py` and
`graph.py` walk each vendor's pages, `schedules.py` keeps the schedules in step with settings.
"""

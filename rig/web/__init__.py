"""The lab dashboard in the browser: ``rig serve`` (see ``rig.web.app``).

Modules: ``app`` (the Starlette app, its pages, the live stream, the access token), ``queries`` (what
the pages read: the lab view of the bench rows, a run's report from its folder or the database), ``svg``
(the Trend plot). Templates and the stylesheet live beside them and are served by the app itself.
"""

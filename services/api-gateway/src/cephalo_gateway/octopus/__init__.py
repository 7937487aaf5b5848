"""The Octopus build-server API, translated to Cephalo's services.

`routes.py` speaks Octopus (`/api/...`, PascalCase, `{ErrorMessage, Errors}`); `backend.py`
calls release-service, deploy-orchestrator and package-feed through the gateway's upstream
client as the caller; `resources.py` turns Cephalo's answers into Octopus resources.
See docs/octopus-compatibility.md for what is and is not supported.
"""

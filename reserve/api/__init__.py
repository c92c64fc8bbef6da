"""The reserve's HTTP service: FastAPI routes, roles and tokens, and the dashboard.

`create_app` in `reserve.api.app` builds the application; `reserve serve` runs it.
"""

from reserve.api.app import create_app

__all__ = ["create_app"]

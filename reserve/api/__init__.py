"""The HTTP service and dashboard.

`create_app` in `reserve.api.app` builds the application; `reserve serve` runs it. This
package's own import loads nothing, so a caller of `reserve.api.auth` or `.accounts` (the
`reserve token` commands) does not pay for FastAPI.
"""

"""The use cases, one place for every adapter: the HTTP routes and sockets (api/routes), the
command line (api/cli) and any other (an MCP server) call them with a `Caller` or an
`Operator`. They check roles and visibility, decide, and use the repositories
(infrastructure/repositories.py); they never build URLs or responses. Their refusals map to an
HTTP status, a WebSocket close code and an exit code in one table (api/errors.py).

The package itself imports nothing: `api.application.caller` and `api.application.refusals` are
read by every command-line command (the refusal table), the whole set of use cases
(`api.application.application.Application`) only by the processes that serve them.
"""

"""scamtrail as a Model Context Protocol server: the task use cases (api/application) as MCP
tools and resources, over stdio (`scamtrail mcp`) and streamable HTTP (`/mcp` in the api).

- `server`: the `MCPServer` and its tools
- `resources`: a task and its timeline as resources (`scamtrail://tasks/{id}`, `.../timeline`)
- `subscriptions`: `resources/subscribe`, a notification per new event of the task, per session
- `listen`: the same over `subscriptions/listen` (protocol 2026-07-28)
- `auth`: who calls: the api's bearer tokens, from the environment (stdio) or each request (HTTP)
- `event_store`: the SDK's `EventStore` on PostgreSQL, so a stream resumes on any replica
- `http`: the `/mcp` endpoint: the gate, the session manager, the replay of another replica's
  stream
"""

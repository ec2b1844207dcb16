"""scamtrail as a Model Context Protocol server: the task use cases (api/application) as MCP
tools, over stdio (`scamtrail mcp`) and streamable HTTP (`/mcp` in the api).

- `server`: the `MCPServer` and its tools
- `auth`: who calls: the api's bearer tokens, from the environment (stdio) or each request (HTTP)
- `event_store`: the SDK's `EventStore` on PostgreSQL, so a stream resumes on any replica
- `http`: the `/mcp` endpoint: the gate, the session manager, the replay of another replica's
  stream
"""

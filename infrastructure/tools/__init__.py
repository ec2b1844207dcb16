"""Tool adapters: the agent's tools behind the `domain.tools.Tool` protocol."""

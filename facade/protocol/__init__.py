"""MCP itself, for both eras, with no HTTP server and no Redis inside.

`core.McpCore` answers messages; `versions` routes them to an era; `handshake` and `stateless`
hold each era's rules; `envelope` and `headers` read what a stateless request says about itself;
`tool_methods`, `results` and `notifications` give tools/list, tools/call and what travels
while a tool runs; `subscriptions` what a notification stream asks for and carries;
`jsonrpc` parses and frames messages; `tool_calls` is the interface to the service that runs
tools.
"""

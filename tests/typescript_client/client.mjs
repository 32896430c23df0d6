// The official MCP TypeScript SDK client (Client + StreamableHTTPClientTransport) against a
// toolq facade: `node client.mjs http://127.0.0.1:PORT/mcp`.
//
// Run by tests/test_typescript_client.py. Prints ONE JSON object on stdout describing what the
// client saw; the Python test asserts on it. Any unexpected failure goes to stderr with a
// non-zero exit code.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const url = new URL(process.argv[2]);

// Every HTTP exchange the transport makes, to show the DELETE really was answered (the SDK also
// accepts 405 as "the server does not support termination").
const http = [];
async function recordingFetch(input, init) {
  const response = await fetch(input, init);
  http.push({ method: init?.method ?? "GET", status: response.status });
  return response;
}

// A call's outcome: the result, or the error the SDK threw (JSON-RPC errors become McpError).
async function outcome(promise) {
  try {
    return { result: await promise };
  } catch (error) {
    return { error: { name: error?.constructor?.name, code: error?.code, message: String(error?.message) } };
  }
}

const client = new Client({ name: "toolq-typescript-client-test", version: "0.0.0" });
const transport = new StreamableHTTPClientTransport(url, { fetch: recordingFetch });
await client.connect(transport);

const report = {
  serverInfo: client.getServerVersion(),
  capabilities: client.getServerCapabilities(),
  protocolVersion: transport.protocolVersion,
  hadSessionId: typeof transport.sessionId === "string" && transport.sessionId.length > 0,
};
const sessionId = transport.sessionId;

const { tools } = await client.listTools();
report.tools = tools.map((tool) => tool.name);
report.add = await outcome(client.callTool({ name: "add", arguments: { a: 15, b: 27 } }));
report.weather = await outcome(client.callTool({ name: "weather", arguments: { city: "Delhi" } }));
report.unknownTool = await outcome(client.callTool({ name: "no_such_tool", arguments: {} }));
report.badArguments = await outcome(client.callTool({ name: "add", arguments: { a: "x" } }));

await transport.terminateSession();
report.sessionIdAfterTerminate = transport.sessionId ?? null;
report.http = http;

// The terminated session is gone on the server too: the old id now gets 404.
const reused = await fetch(url, {
  method: "POST",
  headers: {
    "content-type": "application/json",
    accept: "application/json, text/event-stream",
    "mcp-session-id": sessionId,
    "mcp-protocol-version": report.protocolVersion,
  },
  body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "ping" }),
});
await reused.body?.cancel();
report.reusedSessionStatus = reused.status;

await client.close();
process.stdout.write(JSON.stringify(report) + "\n");

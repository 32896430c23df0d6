// The official MCP TypeScript SDK client (Client + StreamableHTTPClientTransport) against a
// toolq facade: `node client.mjs http://127.0.0.1:PORT/mcp`.
//
// Environment (all optional), as for client_v2.mjs:
//   PROGRESS_TOOL (default "steps"),   PROGRESS_ARGS (JSON, default {"count":3})
//   SLOW_TOOL     (default "patient"), SLOW_ARGS     (JSON, default {"seconds":30})
//   CANCEL_AFTER_MS (default 1000)     when the slow call is aborted (the SDK then POSTs
//                                      notifications/cancelled)
//   HOLD_AFTER_CANCEL_MS (default 200) how long the session then stays open before the next call
//                                      (closing it would also stop the call's job on the server)
//
// Run by tests/test_typescript_client.py. Prints ONE JSON object on stdout describing what the
// client saw; the Python test asserts on it. Any unexpected failure goes to stderr with a
// non-zero exit code.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { LoggingMessageNotificationSchema } from "@modelcontextprotocol/sdk/types.js";

const url = new URL(process.argv[2]);
const jsonEnv = (name, fallback) => (process.env[name] ? JSON.parse(process.env[name]) : fallback);
const progressTool = process.env.PROGRESS_TOOL || "steps";
const progressArgs = jsonEnv("PROGRESS_ARGS", { count: 3 });
const slowTool = process.env.SLOW_TOOL || "patient";
const slowArgs = jsonEnv("SLOW_ARGS", { seconds: 30 });
const cancelAfterMs = Number(process.env.CANCEL_AFTER_MS || 1000);
const holdAfterCancelMs = Number(process.env.HOLD_AFTER_CANCEL_MS || 200);

// Every HTTP exchange the transport makes, to show the DELETE really was answered (the SDK also
// accepts 405 as "the server does not support termination") and the cancellation was POSTed.
const http = [];
async function recordingFetch(input, init) {
  const response = await fetch(input, init);
  let rpcMethod;
  try {
    rpcMethod = JSON.parse(init?.body).method;
  } catch {}
  http.push({ method: init?.method ?? "GET", status: response.status, ...(rpcMethod ? { rpcMethod } : {}) });
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
// The handshake era sends log messages at info and above without a logging/setLevel.
const logs = [];
client.setNotificationHandler(LoggingMessageNotificationSchema, (notification) => {
  logs.push(notification.params);
});
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

const progress = [];
const onprogress = (notification) => progress.push(notification);
report.progress = await outcome(client.callTool({ name: progressTool, arguments: progressArgs }, undefined, { onprogress }));
report.progress.notifications = progress;
report.progress.logMessages = logs.slice();

// Cancellation through an AbortSignal: the SDK POSTs notifications/cancelled for the request.
const controller = new AbortController();
const exchangesBefore = http.length;
let abortedAtEpochMs;
const timer = setTimeout(() => {
  abortedAtEpochMs = Date.now();
  controller.abort(new Error(`cancelled after ${cancelAfterMs} ms`));
}, cancelAfterMs);
const slowStarted = performance.now();
report.cancel = await outcome(client.callTool({ name: slowTool, arguments: slowArgs }, undefined, { signal: controller.signal }));
clearTimeout(timer);
report.cancel.settledAfterMs = Math.round(performance.now() - slowStarted);
report.cancel.abortedAtEpochMs = abortedAtEpochMs ?? null;
// A pause with the session open, so the notifications/cancelled POST is on the record (and alone
// can stop the job), then prove the session still works after a cancel.
await new Promise((resolve) => setTimeout(resolve, holdAfterCancelMs));
report.cancel.exchanges = http.slice(exchangesBefore);
report.afterCancel = await outcome(client.callTool({ name: "add", arguments: { a: 1, b: 2 } }));
report.unknownTool = await outcome(client.callTool({ name: "no_such_tool", arguments: {} }));
report.badArguments = await outcome(client.callTool({ name: "add", arguments: { a: "x" } }));

report.closingAtEpochMs = Date.now();
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

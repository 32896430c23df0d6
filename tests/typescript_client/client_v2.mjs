// The v2 MCP TypeScript client (`@modelcontextprotocol/client`, the split-package SDK that speaks
// protocol 2026-07-28) against an MCP server over Streamable HTTP:
//
//   node client.mjs URL MODE
//
// MODE selects `ClientOptions.versionNegotiation.mode`:
//   "2026-07-28" (or any other YYYY-MM-DD) → { pin: MODE }: the stateless era at exactly that
//                 revision; connect() sends `server/discover` and fails loudly if it is not offered.
//   "auto"      → probe with `server/discover`, fall back to the 2025 `initialize` handshake
//                 (2025-11-25) unless the server gives definitive modern evidence.
//   "legacy"    → the SDK's default: the plain 2025 `initialize` sequence (for comparison).
//
// Environment (all optional):
//   PROGRESS_TOOL (default "steps"),   PROGRESS_ARGS (JSON, default {"count":3})
//   SLOW_TOOL     (default "patient"), SLOW_ARGS     (JSON, default {"seconds":30})
//   CANCEL_AFTER_MS (default 1000)     when the slow call is aborted
//   WIRE_BODIES=1                      also record every request body in `http[]`
//
// Uses the SDK's public API only. Prints ONE JSON object on stdout (shape at the bottom of this
// file); an unexpected failure (connect, tools/list, a call that should succeed throwing, or the
// slow call NOT being cancelled) goes to stderr with the partial report, exit code 1. Bad usage
// exits 2.
import {
  Client,
  LOG_LEVEL_META_KEY,
  StreamableHTTPClientTransport,
} from "@modelcontextprotocol/client";

const [urlArg, mode] = process.argv.slice(2);
if (!urlArg || !mode || !(mode === "auto" || mode === "legacy" || /^\d{4}-\d{2}-\d{2}$/.test(mode))) {
  process.stderr.write('usage: node client.mjs URL MODE   (MODE: "2026-07-28" | "auto" | "legacy")\n');
  process.exit(2);
}
const url = new URL(urlArg);

function jsonEnv(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  try {
    return JSON.parse(raw);
  } catch (error) {
    process.stderr.write(`${name} is not JSON: ${error.message}\n`);
    process.exit(2);
  }
}
const progressTool = process.env.PROGRESS_TOOL || "steps";
const progressArgs = jsonEnv("PROGRESS_ARGS", { count: 3 });
const slowTool = process.env.SLOW_TOOL || "patient";
const slowArgs = jsonEnv("SLOW_ARGS", { seconds: 30 });
const cancelAfterMs = Number(process.env.CANCEL_AFTER_MS || 1000);
const wireBodies = process.env.WIRE_BODIES === "1";

const t0 = performance.now();
const ms = (from = t0) => Math.round(performance.now() - from);

// --- the wire: every HTTP exchange the transport makes --------------------------------------------
const http = [];
// client.close() aborts every exchange's signal: aborts after that are not cancellations.
let closing = false;

function summarizeBody(body) {
  if (typeof body !== "string") return body == null ? undefined : { nonString: typeof body };
  let message;
  try {
    message = JSON.parse(body);
  } catch {
    return { unparsed: body.slice(0, 200) };
  }
  const one = (m) => ({
    rpcMethod: m.method,
    ...(m.id !== undefined ? { id: m.id } : {}),
    ...(m.params?._meta ? { metaKeys: Object.keys(m.params._meta) } : {}),
  });
  return Array.isArray(message) ? { batch: message.map(one) } : one(message);
}

async function recordingFetch(input, init = {}) {
  const headers = new Headers(init.headers ?? (input instanceof Request ? input.headers : undefined));
  const entry = {
    atMs: ms(),
    method: init.method ?? (input instanceof Request ? input.method : "GET"),
    mcpProtocolVersion: headers.get("mcp-protocol-version"),
    mcpMethod: headers.get("mcp-method"),
    mcpName: headers.get("mcp-name"),
    mcpSessionId: headers.has("mcp-session-id") ? "<present>" : null,
    accept: headers.get("accept"),
    ...summarizeBody(init.body),
  };
  // Any other MCP routing headers (e.g. SEP-2243 Mcp-Param-*).
  const extra = [...headers.keys()].filter(
    (name) => name.startsWith("mcp-") && !["mcp-protocol-version", "mcp-method", "mcp-name", "mcp-session-id"].includes(name),
  );
  if (extra.length) entry.otherMcpHeaders = extra;
  if (wireBodies && typeof init.body === "string") entry.body = JSON.parse(init.body);
  http.push(entry);
  // Shows how the SDK cancels: by aborting this exchange's signal (closing the response stream).
  init.signal?.addEventListener("abort", () => {
    if (!closing) entry.abortedAtMs = ms();
  }, { once: true });
  try {
    const response = await fetch(input, init);
    entry.status = response.status;
    entry.contentType = response.headers.get("content-type");
    if (response.headers.has("mcp-session-id")) entry.responseSessionId = true;
    return response;
  } catch (error) {
    entry.fetchError = `${error?.name}: ${error?.message}`;
    throw error;
  }
}

// --- helpers ----------------------------------------------------------------------------------------
function describeError(error) {
  return {
    name: error?.name,
    constructor: error?.constructor?.name,
    code: error?.code,
    message: String(error?.message ?? error),
    ...(error?.data !== undefined ? { data: error.data } : {}),
    ...(error?.cause ? { cause: String(error.cause?.message ?? error.cause) } : {}),
  };
}

function pickResult(result) {
  return {
    isError: result.isError ?? false,
    ...(result.structuredContent !== undefined ? { structuredContent: result.structuredContent } : {}),
    content: result.content,
  };
}

// A call's outcome: the result, or the error the SDK threw (JSON-RPC errors become ProtocolError).
async function outcome(promise) {
  const started = performance.now();
  try {
    return { result: pickResult(await promise), ms: ms(started) };
  } catch (error) {
    return { error: describeError(error), ms: ms(started) };
  }
}

class Unexpected extends Error {}

function mustSucceed(step, value) {
  if (value.error) throw new Unexpected(`${step} threw ${JSON.stringify(value.error)}`);
  return value;
}

// --- the run ----------------------------------------------------------------------------------------
const report = { mode, url: url.href, sdk: "@modelcontextprotocol/client" };
const logs = [];

const versionNegotiation = mode === "legacy" ? { mode: "legacy" } : mode === "auto" ? { mode: "auto" } : { mode: { pin: mode } };
report.versionNegotiation = versionNegotiation;

const client = new Client({ name: "toolq-typescript-client-v2-test", version: "0.0.0" }, { versionNegotiation });
// Server log notifications. On 2026-07-28 a server sends them only for a request whose `_meta`
// opts in with LOG_LEVEL_META_KEY (set on the progress call below); on 2025-era connections
// they arrive without an opt-in (setLoggingLevel is the era's filter).
client.setNotificationHandler("notifications/message", (notification) => {
  logs.push({ atMs: ms(), ...notification.params });
});
const transport = new StreamableHTTPClientTransport(url, { fetch: recordingFetch });

async function run() {
  const connectStarted = performance.now();
  await client.connect(transport);
  report.connectMs = ms(connectStarted);
  report.protocolEra = client.getProtocolEra() ?? null;
  report.protocolVersion = client.getNegotiatedProtocolVersion() ?? null;
  report.transportProtocolVersion = transport.protocolVersion ?? null;
  report.serverInfo = client.getServerVersion() ?? null;
  report.capabilities = client.getServerCapabilities() ?? null;
  report.instructions = client.getInstructions() ?? null;
  const discover = client.getDiscoverResult();
  report.discover = discover ? { supportedVersions: discover.supportedVersions, meta: discover._meta ?? null } : null;
  report.hadSessionId = typeof transport.sessionId === "string" && transport.sessionId.length > 0;

  const listStarted = performance.now();
  const { tools } = await client.listTools();
  report.tools = tools.map((tool) => tool.name);
  report.listToolsMs = ms(listStarted);

  report.add = mustSucceed("add", await outcome(client.callTool({ name: "add", arguments: { a: 15, b: 27 } })));
  report.weather = mustSucceed("weather", await outcome(client.callTool({ name: "weather", arguments: { city: "Delhi" } })));

  // Progress + log notifications.
  const progress = [];
  const progressCall = await outcome(
    client.callTool(
      { name: progressTool, arguments: progressArgs, _meta: { [LOG_LEVEL_META_KEY]: "debug" } },
      {
        onprogress: ({ progress: value, total, message }) => progress.push({ atMs: ms(), progress: value, total, message }),
      },
    ),
  );
  report.progress = {
    tool: progressTool,
    arguments: progressArgs,
    logLevelOptIn: { [LOG_LEVEL_META_KEY]: "debug" },
    ...mustSucceed(progressTool, progressCall),
    notifications: progress,
    logMessages: logs.slice(),
  };

  // Cancellation through an AbortSignal in the request options.
  const controller = new AbortController();
  const exchangesBefore = http.length;
  const slowStarted = performance.now();
  const timer = setTimeout(() => controller.abort(new Error(`cancelled by client.mjs after ${cancelAfterMs} ms`)), cancelAfterMs);
  const slow = await outcome(client.callTool({ name: slowTool, arguments: slowArgs }, { signal: controller.signal }));
  clearTimeout(timer);
  report.cancel = {
    tool: slowTool,
    arguments: slowArgs,
    abortAfterMs: cancelAfterMs,
    settledAfterMs: ms(slowStarted),
    ...(slow.error ? { threw: slow.error } : { unexpectedResult: slow.result }),
    // Exchanges the cancelled call (and its cancellation, if any) produced.
    exchanges: http.slice(exchangesBefore).map((e) => ({ ...e })),
  };
  if (!slow.error) throw new Unexpected(`${slowTool} was not cancelled: it returned ${JSON.stringify(slow.result)}`);
  // A short pause so a notifications/cancelled POST (legacy era) is on the record, then prove the
  // connection still works after a cancel.
  await new Promise((resolve) => setTimeout(resolve, 200));
  report.cancel.exchanges = http.slice(exchangesBefore).map((e) => ({ ...e }));
  report.afterCancel = mustSucceed("add after cancel", await outcome(client.callTool({ name: "add", arguments: { a: 1, b: 2 } })));

  report.unknownTool = await outcome(client.callTool({ name: "no_such_tool", arguments: {} }));
  report.badArguments = await outcome(client.callTool({ name: "add", arguments: { a: "x" } }));

  if (report.hadSessionId) {
    await transport.terminateSession();
    report.terminatedSession = true;
  }
  closing = true;
  await client.close();
  report.totalMs = ms();
  report.http = http;
}

try {
  await run();
} catch (error) {
  report.http = http;
  report.failure = describeError(error);
  closing = true;
  process.stderr.write(
    `client.mjs: ${error instanceof Unexpected ? "unexpected outcome" : "failed"}: ${error?.stack ?? error}\n` +
      `partial report: ${JSON.stringify(report)}\n`,
  );
  await client.close().catch(() => {});
  process.exit(1);
}
process.stdout.write(JSON.stringify(report) + "\n");

// Report shape:
// { mode, url, sdk, versionNegotiation,
//   connectMs, protocolEra: "modern"|"legacy", protocolVersion, transportProtocolVersion,
//   serverInfo, capabilities, instructions, discover: {supportedVersions, meta}|null, hadSessionId,
//   tools: [names], listToolsMs,
//   add|weather|afterCancel|unknownTool|badArguments: {result: {isError, structuredContent?, content}, ms}
//                                                   | {error: {name, constructor, code, message, data?}, ms},
//   progress: {tool, arguments, logLevelOptIn, result, ms, notifications: [{atMs, progress, total, message}],
//              logMessages: [{atMs, level, logger, data}]},
//   cancel: {tool, arguments, abortAfterMs, settledAfterMs, threw: {...}, exchanges: [http entries]},
//   terminatedSession?, totalMs,
//   http: [{atMs, method, mcpProtocolVersion, mcpMethod, mcpName, mcpSessionId, accept,
//           rpcMethod, id?, metaKeys?, otherMcpHeaders?, body?, status, contentType, responseSessionId?,
//           abortedAtMs?, fetchError?}] }

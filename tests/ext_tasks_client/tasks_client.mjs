// The MCP Tasks requester `@modelcontextprotocol/ext-tasks` (over the v2 TypeScript SDK client,
// `@modelcontextprotocol/client`) against an MCP server over Streamable HTTP:
//
//   node tasks_client.mjs URL ERA      (ERA: "2025-11-25" | "2026-07-28")
//
// "2025-11-25": the SDK client does the `initialize` handshake; ext-tasks drives the era's tasks
//               (params.task on tools/call, tasks/get, tasks/result, tasks/list, tasks/cancel)
//               through the client itself.
// "2026-07-28": the SDK client is pinned to the stateless era (`server/discover`); ext-tasks needs
//               the host's raw request path for tools/call and tasks/* there (its README:
//               `rawDispatch` + `v2RequestFraming`), which this script supplies with fetch(): one
//               POST per request, JSON or SSE answer, the headers ext-tasks asks for (it sets
//               `Mcp-Name: <taskId>` on tasks/*) plus the standard ones.
//
// Environment: LEDGER and TRAIL (files for the test tools `tallied` and `watched`),
//   TALLIED_SECONDS (default 3), WATCHED_SECONDS (default 30), CALL (the ledger name of the
//   tallied call, default "ext-tasks").
//
// It calls `tallied` through `session.callTool` (long enough to be a task) and settles the
// execution, calls it again quickly (an immediate result), then calls `watched`, waits for its
// trail to say "started", cancels the execution, and reads the task back. Prints ONE
// JSON object on stdout (shape at the bottom); an unexpected failure goes to stderr with the
// partial report, exit code 1. Bad usage exits 2.
import { readFileSync } from "node:fs";
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import {
  DispatchError,
  createTaskSessionFromClient,
  resultFromTaskOutcome,
} from "@modelcontextprotocol/ext-tasks/client";

const [urlArg, era] = process.argv.slice(2);
if (!urlArg || (era !== "2025-11-25" && era !== "2026-07-28")) {
  process.stderr.write('usage: node tasks_client.mjs URL ERA   (ERA: "2025-11-25" | "2026-07-28")\n');
  process.exit(2);
}
const url = new URL(urlArg);
const modern = era === "2026-07-28";
const ledger = process.env.LEDGER;
const trail = process.env.TRAIL;
if (!ledger || !trail) {
  process.stderr.write("LEDGER and TRAIL must name files\n");
  process.exit(2);
}
const talliedSeconds = Number(process.env.TALLIED_SECONDS || 3);
const watchedSeconds = Number(process.env.WATCHED_SECONDS || 30);
const callName = process.env.CALL || "ext-tasks";
const clientInfo = { name: "toolq-ext-tasks-test", version: "0.0.0" };

const t0 = performance.now();
const ms = (from = t0) => Math.round(performance.now() - from);

// --- the wire: every JSON-RPC request either path sent, and what came back ------------------------
const wire = [];

function summarizeResult(result) {
  if (result === null || typeof result !== "object") return { result };
  return {
    resultType: result.resultType,
    // 2025-11-25: CreateTaskResult {task}; 2026-07-28: the flat task fields.
    resultTaskId: result.taskId ?? result.task?.taskId,
    taskStatus: result.status ?? result.task?.status,
    hasStructuredContent: result.structuredContent !== undefined,
    // 2026-07-28 tasks/get of a completed task inlines the CallToolResult.
    ...(result.result !== null && typeof result.result === "object"
      ? {
          inlined: {
            keys: Object.keys(result.result).sort(),
            resultType: result.result.resultType ?? null,
            structuredContent: result.result.structuredContent,
          },
        }
      : {}),
  };
}

function summarizeRequest(message) {
  return {
    rpcMethod: message?.method,
    ...(message?.params?.name !== undefined ? { name: message.params.name } : {}),
    ...(message?.params?.taskId !== undefined ? { taskId: message.params.taskId } : {}),
    ...(message?.params?.task !== undefined ? { task: message.params.task } : {}),
    ...(message?.params?._meta?.["io.modelcontextprotocol/clientCapabilities"]
      ? { clientCapabilities: message.params._meta["io.modelcontextprotocol/clientCapabilities"] }
      : {}),
  };
}

// The SDK transport's fetch: handshake-era traffic, and the modern era's non-task requests.
async function recordingFetch(input, init = {}) {
  const headers = new Headers(init.headers ?? undefined);
  let message;
  try {
    message = typeof init.body === "string" ? JSON.parse(init.body) : undefined;
  } catch {
    message = undefined;
  }
  const entry = {
    path: "sdk",
    atMs: ms(),
    httpMethod: init.method ?? "GET",
    mcpMethod: headers.get("mcp-method"),
    mcpName: headers.get("mcp-name"),
    ...(message && !Array.isArray(message) ? summarizeRequest(message) : {}),
  };
  wire.push(entry);
  const response = await fetch(input, init);
  entry.httpStatus = response.status;
  entry.contentType = response.headers.get("content-type");
  // A JSON answer can be read from a clone without disturbing the SDK; SSE streams are left alone.
  if (message?.id !== undefined && entry.contentType?.startsWith("application/json")) {
    try {
      const body = await response.clone().json();
      if (body.result !== undefined) Object.assign(entry, summarizeResult(body.result));
      if (body.error !== undefined) entry.error = body.error;
    } catch {
      // not JSON after all: the SDK reports it
    }
  }
  return response;
}

// --- the host's raw request path (2026-07-28 only) ----------------------------------------------
let rawIds = 0;
let framing;

function parseAnswer(text, contentType, id) {
  if (contentType?.startsWith("text/event-stream")) {
    for (const block of text.split(/\r?\n\r?\n/)) {
      const data = block
        .split(/\r?\n/)
        .filter((line) => line.startsWith("data:"))
        .map((line) => line.slice(5).trimStart())
        .join("\n");
      if (!data) continue;
      const message = JSON.parse(data);
      if (message.id === id) return message;
    }
    return undefined;
  }
  return text ? JSON.parse(text) : undefined;
}

async function rawDispatch(request, options = {}) {
  const id = `raw-${++rawIds}`;
  const message = { jsonrpc: "2.0", id, ...request };
  const headers = {
    "Content-Type": "application/json",
    Accept: "application/json, text/event-stream",
    "MCP-Protocol-Version": framing.protocolVersion,
    "Mcp-Method": request.method,
    ...(request.method === "tools/call" ? { "Mcp-Name": request.params.name } : {}),
    ...(options.context?.headers ?? {}),
  };
  const signals = [options.signal, options.context?.requestTimeoutMs ? AbortSignal.timeout(options.context.requestTimeoutMs) : undefined].filter(Boolean);
  const entry = { path: "raw", atMs: ms(), mcpMethod: headers["Mcp-Method"], mcpName: headers["Mcp-Name"] ?? null, ...summarizeRequest(message) };
  wire.push(entry);
  let response;
  try {
    response = await fetch(url, {
      method: "POST",
      headers,
      body: JSON.stringify(message),
      ...(signals.length ? { signal: AbortSignal.any(signals) } : {}),
    });
  } catch (error) {
    entry.fetchError = String(error?.message ?? error);
    throw new DispatchError(`POST ${request.method} failed: ${entry.fetchError}`, true, { cause: error });
  }
  entry.httpStatus = response.status;
  entry.contentType = response.headers.get("content-type");
  const text = await response.text();
  let answer;
  try {
    answer = parseAnswer(text, entry.contentType, id);
  } catch (error) {
    throw new DispatchError(`${request.method}: HTTP ${response.status}, unparsable body ${text.slice(0, 200)}`, false, { cause: error });
  }
  if (answer?.error !== undefined) {
    entry.error = answer.error;
    return { kind: "error", error: answer.error };
  }
  if (answer?.result === undefined) {
    throw new DispatchError(`${request.method}: HTTP ${response.status} without a response: ${text.slice(0, 200)}`);
  }
  Object.assign(entry, summarizeResult(answer.result));
  return { kind: "result", result: answer.result };
}

// --- helpers ----------------------------------------------------------------------------------------
function describeError(error) {
  return {
    name: error?.name,
    constructor: error?.constructor?.name,
    code: error?.code,
    message: String(error?.message ?? error),
    ...(error?.cause ? { cause: String(error.cause?.message ?? error.cause) } : {}),
  };
}

function view(task) {
  if (task === undefined) return null;
  const { taskId, status, statusMessage, retentionMs, suggestedPollIntervalMs, createdAt, lastUpdatedAt } = task;
  return { taskId, status, statusMessage, retentionMs, suggestedPollIntervalMs, createdAt, lastUpdatedAt };
}

function pickResult(result) {
  return {
    isError: result?.isError ?? false,
    structuredContent: result?.structuredContent,
    content: result?.content,
    meta: result?._meta ?? null,
  };
}

async function until(predicate, timeoutMs, what) {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (predicate()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

function trailEvents() {
  try {
    return readFileSync(trail, "utf8").split("\n").filter(Boolean).map((line) => line.split(" ")[0]);
  } catch {
    return [];
  }
}

class Unexpected extends Error {}

// --- the run ----------------------------------------------------------------------------------------
const report = { era, url: url.href, packages: ["@modelcontextprotocol/ext-tasks", "@modelcontextprotocol/client"] };
const versionNegotiation = modern ? { mode: { pin: era } } : { mode: "legacy" };
const client = new Client(clientInfo, { versionNegotiation });
const transport = new StreamableHTTPClientTransport(url, { fetch: recordingFetch });
let session;
let exitAfterReport = false;

async function run() {
  await client.connect(transport);
  report.protocolEra = client.getProtocolEra() ?? null;
  report.protocolVersion = client.getNegotiatedProtocolVersion() ?? null;
  report.serverCapabilities = client.getServerCapabilities() ?? null;
  report.hadSessionId = typeof transport.sessionId === "string" && transport.sessionId.length > 0;

  framing = { protocolVersion: report.protocolVersion, clientInfo, clientCapabilities: {} };
  session = createTaskSessionFromClient(client, {
    endpointId: `toolq-test:${url.href}:${era}`,
    ...(modern ? { rawDispatch, v2RequestFraming: framing } : {}),
    onError: (error) => (report.backgroundErrors ??= []).push(describeError(error)),
  });
  report.sessionCapabilities = session.capabilities;
  // 2025-11-25: a tool whose taskSupport is "optional" runs as a task only when the caller
  // prefers one. 2026-07-28: the server decides ("allow", the default).
  const task = modern ? {} : { task: { preference: "prefer", retentionMs: 60_000 } };

  // Across a facade restart: MODE=handoff starts a task and hands its reference over (as a host
  // would persist it); MODE=resume picks that reference up, through whatever facade now serves
  // the URL, and settles it.
  if (process.env.MODE === "handoff") {
    const execution = await session.callTool("tallied", { ledger, call: callName, seconds: talliedSeconds }, task);
    report.handoff = { kind: execution.kind, taskId: execution.handle?.taskId ?? null };
    if (execution.kind !== "task") throw new Unexpected("the call did not become a task");
    await execution.handoff((reference) => {
      report.reference = reference;
    });
    // Not session.close(): ext-tasks 0.2.2 then cancels the handed-off task (its execution stays
    // in the session's active set after handoff). A host that hands off is going away: exit.
    exitAfterReport = true;
    return;
  }
  if (process.env.MODE === "resume") {
    const resumed = await session.resumeTask(JSON.parse(process.env.REFERENCE));
    const { outcome } = await resumed.settle();
    report.resumed = {
      taskId: resumed.handle?.taskId ?? null,
      outcomeStatus: outcome.status,
      result: outcome.status === "completed" ? pickResult(resultFromTaskOutcome(outcome)) : null,
      ...(outcome.status === "failed" ? { error: describeError(outcome.error) } : {}),
    };
    await session.close();
    await client.close();
    return;
  }

  // 1. A call long enough to be a task, settled to its result.
  const started = performance.now();
  const execution = await session.callTool("tallied", { ledger, call: callName, seconds: talliedSeconds }, task);
  const events = [];
  const { outcome, lastTask } = await execution.settle({
    onEvent: (event) => events.push(event.type === "task" ? { type: "task", status: event.task.status, atMs: ms(started) } : { type: "outcome", status: event.outcome.status, atMs: ms(started) }),
  });
  report.tallied = {
    kind: execution.kind,
    taskId: execution.handle?.taskId ?? null,
    declaredTaskSupport: execution.declaration?.taskSupport ?? null,
    outcomeStatus: outcome.status,
    result: outcome.status === "completed" ? pickResult(resultFromTaskOutcome(outcome)) : null,
    ...(outcome.status === "failed" ? { error: describeError(outcome.error) } : {}),
    outcomeTask: view(outcome.task),
    lastTask: view(lastTask),
    events,
    settledAfterMs: ms(started),
  };
  // A failed outcome is on the record for the test to judge; the run goes on.

  // 2. A quick call, with no preference for a task: answered at once.
  const quick = await session.callTool("tallied", { ledger, call: `${callName}-quick`, seconds: 0 });
  const quickOutcome = (await quick.settle()).outcome;
  report.quick = {
    kind: quick.kind,
    outcomeStatus: quickOutcome.status,
    result: quickOutcome.status === "completed" ? pickResult(quickOutcome.result) : null,
    ...(quickOutcome.status === "failed" ? { error: describeError(quickOutcome.error) } : {}),
  };

  if (session.capabilities.inventory === "server-list") {
    const page = await session.listTasks();
    report.listed = page.tasks.map((listed) => ({ taskId: listed.taskId, status: listed.status }));
  }

  // 3. A long call, cancelled once its job has started on the worker.
  const slow = await session.callTool("watched", { marker: trail, seconds: watchedSeconds }, task);
  report.watched = { kind: slow.kind, taskId: slow.handle?.taskId ?? null };
  if (slow.kind !== "task") throw new Unexpected("watched did not become a task");
  await until(() => trailEvents().includes("started"), 10_000, "watched to start on its worker");
  const cancelStarted = performance.now();
  report.watched.cancelSentAtEpochMs = Date.now();
  await slow.cancel();
  report.watched.cancelAckMs = ms(cancelStarted);
  const cancelled = await slow.result();
  report.watched.outcomeStatus = cancelled.status;
  // What the server says now, read through a fresh controller for the same task.
  report.watched.afterCancel = view(await session.task(slow.handle.taskId).snapshot());
  // A second cancel of a task that has ended: the server's answer, as ext-tasks surfaces it.
  try {
    await session.cancelTask(slow.handle.taskId);
    report.watched.secondCancel = { ok: true };
  } catch (error) {
    report.watched.secondCancel = { threw: describeError(error) };
  }

  await session.close();
  await client.close();
  report.totalMs = ms();
}

const failure = await run().then(() => undefined, (error) => error ?? new Error("run() rejected"));
report.wire = wire;
if (failure === undefined) {
  process.stdout.write(JSON.stringify(report) + "\n", () => {
    if (exitAfterReport) process.exit(0);
  });
} else {
  report.failure = describeError(failure);
  const what = failure instanceof Unexpected ? "unexpected outcome" : "failed";
  process.stderr.write(`tasks_client.mjs: ${what}: ${failure.stack ?? failure}\npartial report: ${JSON.stringify(report)}\n`);
  await session?.close().catch(() => {});
  await client.close().catch(() => {});
  process.exitCode = 1;
}

// Report shape:
// { era, url, packages, protocolEra: "legacy"|"modern", protocolVersion, serverCapabilities, hadSessionId,
//   sessionCapabilities: {inventory, execution, cancellation, inputResponses, requestedRetention},
//   tallied: {kind: "task"|"immediate", taskId, declaredTaskSupport, outcomeStatus, result: {isError,
//             structuredContent, content, meta}, outcomeTask, lastTask, events: [{type, status, atMs}],
//             settledAfterMs},
//   quick: {kind, outcomeStatus, result, error?},
//   listed?: [{taskId, status}]                  (2025-11-25: tasks/list)
//   watched: {kind, taskId, cancelSentAtEpochMs, cancelAckMs, outcomeStatus, afterCancel: task view,
//             secondCancel: {ok} | {threw}},
//   totalMs,
//   wire: [{path: "sdk"|"raw", atMs, mcpMethod, mcpName, rpcMethod, name?, taskId?, task?,
//           clientCapabilities?, httpStatus, contentType, resultType?, resultTaskId?, taskStatus?,
//           hasStructuredContent?, inlined?: {keys, resultType, structuredContent}, error?}] }

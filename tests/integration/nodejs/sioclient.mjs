// @ts-check
/**
 * A real Node socket.io-client (4.8) pointed at a target; prints one JSON line of what happened.
 *
 *   node sioclient.mjs URL [--transports websocket,polling] [--api-key-env NAME] [--ca PEM]
 *        [--origin ORIGIN] [--path /socket.io] [--hold-s N] [--emit-size BYTES] [--inscribe]
 *        [--namespace-check] [--connect-timeout-s S] [--ack-timeout-s S] [--try-all-transports]
 *
 * Reconnection is off: the first outcome is the one a test compares with the ground truth. Times
 * are seconds since the client started. Exit 0 when it connected, 1 when it did not, 2 on usage.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { parseArgs } from "node:util";
import { io } from "socket.io-client";

const VERSION = createRequire(import.meta.url)("socket.io-client/package.json").version;
// An event no application handles: a size probe that never creates a job.
const PAYLOAD_EVENT = "kiloscribe-lab-payload";
const CHECK_NAMESPACE = "/kiloscribe-lab-check";
const T0 = performance.now();
const now = () => Math.round(performance.now() - T0) / 1000;

/** @typedef {Record<string, unknown>} Json */

/**
 * What a disconnect's or error's details say, without the XHR or socket objects they drag along.
 * @param {unknown} value
 * @returns {unknown}
 */
function describe(value) {
  if (value === undefined || value === null) return null;
  if (typeof value !== "object") return value;
  const v = /** @type {Json} */ (value);
  /** @type {Json} */
  const out = {};
  for (const key of ["message", "description", "type", "code", "reason", "wasClean", "status"]) {
    const field = v[key];
    if (field === undefined) continue;
    out[key] = typeof field === "object" ? describe(field) : field;
  }
  // Polling errors: the XHR carries the HTTP status of the request that failed.
  const ctx = /** @type {Json | undefined} */ (v.context);
  if (ctx && typeof ctx === "object") {
    if ("status" in ctx) out.http_status = ctx.status;
    if ("responseText" in ctx && typeof ctx.responseText === "string") out.http_body = ctx.responseText.slice(0, 300);
    if ("code" in ctx) out.close_code = ctx.code;
    if ("reason" in ctx) out.close_reason = String(ctx.reason);
  }
  if (v.data !== undefined) out.data = v.data;
  return out;
}

/** A start-inscription request the mock contract accepts. */
function inscriptionRequest() {
  return {
    holderId: "0.0.12345",
    mode: "file",
    network: "testnet",
    onlyJSONCollection: 0,
    creator: "kiloscribe-lab",
    description: "real-client check",
    fileStandard: "1",
    metadataObject: {},
    file: { type: "url", url: "https://example.invalid/lab.txt" },
  };
}

function usage() {
  console.error(
    "usage: sioclient.mjs URL [--transports websocket,polling] [--api-key-env NAME] [--ca PEM] " +
      "[--origin ORIGIN] [--path P] [--hold-s N] [--emit-size BYTES] [--inscribe] [--namespace-check]",
  );
  process.exit(2);
}

async function main() {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      transports: { type: "string", default: "websocket,polling" },
      "api-key-env": { type: "string" },
      ca: { type: "string" },
      origin: { type: "string" },
      path: { type: "string", default: "/socket.io" },
      "hold-s": { type: "string", default: "0" },
      "emit-size": { type: "string" },
      inscribe: { type: "boolean", default: false },
      "namespace-check": { type: "boolean", default: false },
      "connect-timeout-s": { type: "string", default: "10" },
      "ack-timeout-s": { type: "string", default: "10" },
      "try-all-transports": { type: "boolean", default: false },
    },
  });
  if (positionals.length !== 1) usage();
  const url = positionals[0];
  const transports = (values.transports ?? "").split(",").filter(Boolean);
  const keyEnv = values["api-key-env"];
  // The key is named, never passed: it is read here and never printed.
  const apiKey = keyEnv ? process.env[keyEnv] ?? "" : "";
  const holdS = Number(values["hold-s"]);
  const connectTimeoutS = Number(values["connect-timeout-s"]);
  const ackTimeoutS = Number(values["ack-timeout-s"]);

  /** @type {Json} */
  const result = {
    client: "socket.io-client",
    version: VERSION,
    url,
    transports,
    connected: false,
    connect_error: null,
    transport: null,
    upgraded_to: null,
    upgrade_error: null,
    handshake: null,
    pings: [],
    disconnect: null,
  };
  /** @type {Json[]} */
  const events = [];
  result.events = events;

  /** @type {Partial<import("socket.io-client").ManagerOptions & import("socket.io-client").SocketOptions>} */
  const options = {
    path: values.path,
    transports: /** @type {("polling"|"websocket")[]} */ (transports),
    auth: { apiKey },
    reconnection: false,
    timeout: connectTimeoutS * 1000,
    tryAllTransports: values["try-all-transports"],
    forceNew: true,
  };
  if (values.ca) options.ca = readFileSync(values.ca, "utf8");
  // In Node, extraHeaders reach both the XHR polling requests and the ws upgrade.
  if (values.origin) options.extraHeaders = { origin: values.origin };

  const socket = io(url, options);
  const manager = socket.io;
  manager.on("open", () => {
    const engine = manager.engine;
    result.transport = engine.transport.name;
    // The "handshake" event fired before "open" reached the manager: read what the engine kept.
    const e = /** @type {Json} */ (/** @type {unknown} */ (engine));
    result.handshake = { sid: e.id, pingInterval: e._pingInterval, pingTimeout: e._pingTimeout, maxPayload: e._maxPayload };
    engine.on("upgrade", (t) => {
      result.upgraded_to = t.name;
      events.push({ t: now(), event: "upgrade", transport: t.name });
    });
    engine.on("upgradeError", (err) => {
      result.upgrade_error = describe(err);
      events.push({ t: now(), event: "upgradeError", error: describe(err) });
    });
    engine.on("ping", () => /** @type {number[]} */ (result.pings).push(now()));
  });

  const outcome = await new Promise((resolve) => {
    const timer = setTimeout(() => resolve("deadline"), (connectTimeoutS + 1) * 1000);
    socket.once("connect", () => {
      clearTimeout(timer);
      resolve("connect");
    });
    socket.once("connect_error", (err) => {
      clearTimeout(timer);
      result.connect_error = {
        message: err.message,
        // A CONNECT_ERROR from the server carries its data; a transport failure carries a description.
        ...( /** @type {Json} */ (describe(err))),
      };
      events.push({ t: now(), event: "connect_error", message: err.message });
      resolve("connect_error");
    });
  });
  socket.on("disconnect", (reason, details) => {
    result.disconnect = { reason, at_s: now(), details: describe(details) };
  });

  if (outcome === "connect") {
    result.connected = true;
    result.connected_at_s = now();
    result.transport = manager.engine.transport.name;
    events.push({ t: now(), event: "connect", transport: result.transport });

    if (values["namespace-check"]) result.namespace_check = await namespaceCheck(manager, now);
    if (values["emit-size"] !== undefined) {
      const size = Number(values["emit-size"]);
      socket.emit(PAYLOAD_EVENT, "x".repeat(size));
      result.emit = { size, at_s: now() };
      events.push({ t: now(), event: "emit", size });
      // Whether the session survived: the server answers an unknown namespace without app code.
      result.namespace_check_after_emit = await namespaceCheck(manager, now);
    }
    if (values.inscribe) {
      const sentAt = now();
      /** @type {Json} */
      const inscription = { sent_at_s: sentAt, ack: null, progress: 0, complete: false };
      socket.on("inscription-progress", () => (inscription.progress = Number(inscription.progress) + 1));
      socket.on("inscription-complete", () => (inscription.complete = true));
      try {
        const ack = await socket.timeout(ackTimeoutS * 1000).emitWithAck("start-inscription", inscriptionRequest());
        inscription.ack = { at_s: now(), success: ack?.success ?? null, keys: Object.keys(ack ?? {}).sort() };
      } catch (err) {
        inscription.ack_error = { at_s: now(), message: err instanceof Error ? err.message : String(err) };
      }
      await new Promise((r) => setTimeout(r, 300));
      result.inscription = inscription;
    }
    if (holdS > 0) {
      // Hold until the deadline or the first disconnect, whichever comes first.
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, holdS * 1000);
        socket.once("disconnect", () => {
          clearTimeout(timer);
          resolve(undefined);
        });
      });
    }
    if (socket.connected) {
      result.transport_at_end = manager.engine.transport.name;
    }
  } else if (outcome === "deadline") {
    result.connect_error = { message: "harness deadline" };
  }
  result.elapsed_s = now();
  socket.off("disconnect");
  socket.close();
  manager.engine?.close();
  process.stdout.write(JSON.stringify(result) + "\n");
  process.exit(result.connected ? 0 : 1);
}

/**
 * CONNECT to a namespace that does not exist: every Socket.IO v5 server refuses it itself.
 * @param {import("socket.io-client").Manager} manager
 * @param {() => number} clock
 */
function namespaceCheck(manager, clock) {
  return new Promise((resolve) => {
    const probe = manager.socket(CHECK_NAMESPACE, { auth: {} });
    const done = (/** @type {Json} */ answer) => {
      clearTimeout(timer);
      probe.off();
      probe.disconnect();
      resolve({ at_s: clock(), ...answer });
    };
    const timer = setTimeout(() => done({ answer: "none within 3 s" }), 3000);
    probe.once("connect_error", (err) => done({ answer: "connect_error", message: err.message }));
    probe.once("connect", () => done({ answer: "connect" }));
    probe.connect();
  });
}

main();

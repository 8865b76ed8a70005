// @ts-check
/**
 * One lab backend (`inscribe-N`) on the reference Socket.IO server (Node socket.io 4.8): the mock
 * Kiloscribe API, behaving as kiloscribe_lab/lab/backend.py does, so that a scenario can run on
 * the implementation production most likely uses (`kiloscribe-lab lab up --backend node`).
 *
 *   node server.mjs --config backends.json --name inscribe-1 --port P [--api-key-env NAME]
 *
 * It reads the lab's backends.json, `backends.<name>` being BackendBehaviour.to_json() (field
 * names and checks as kiloscribe_lab/lab/scenarios.py; a bad one exits 2 naming it). The
 * accepted API key is read from the environment variable named by --api-key-env (default
 * KILOSCRIBE_API_KEY), never from the command line. Engine.IO's own routing (`new Server`) is
 * kept on purpose: its error answers, its 1 s hang-up of unknown upgrades and its transport
 * checks are exactly the wire facts a lab on the reference server exists to show.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { parseArgs } from "node:util";
import { Server } from "socket.io";

const BACKEND_HEADER = "x-lab-backend";
const HEALTH_PATH = "/api/health";
const INVALID_KEY_MESSAGE = "Invalid API key";
// Progress events are spaced so a client sees them arrive, yet a flow ends well within a second.
const PROGRESS_STEPS = [25, 50, 75, 100];
const PROGRESS_INTERVAL_MS = 20;
const REST_BODY_LIMIT = 8 * 1024 * 1024;
// A lab backend has nothing to drain: SIGTERM means gone within a second.
const SHUTDOWN_GRACE_MS = 500;

// Wall-clock nanoseconds (Date.now() has only ms): tx ids stay unique, as time.time_ns() makes them.
const EPOCH_OFFSET_NS = BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();

// As scenarios.py's _PATH_RE and _ORIGIN_RE.
const PATH_RE = /^\/[A-Za-z0-9._~!$&'()*+,;=:@/-]*[A-Za-z0-9._~!$&'()*+,;=:@-]$/;
const ORIGIN_RE = /^https?:\/\/[A-Za-z0-9.-]+(?::\d{1,5})?$/;
const ACCOUNT_RE = /^\d+\.\d+\.\d+$/;
const RETRIEVE_ID_RE = /^(\d+\.\d+\.\d+)-(\d+)-(\d+)$/;
const INSCRIPTION_MODES = new Set(["file", "upload", "hashinal", "hashinal-collection", "bulk-files"]);

/**
 * @typedef {object} Behaviour  one backend's switches, from `backends.<name>` in the config
 *   (the fields of kiloscribe_lab.lab.scenarios.BackendBehaviour, in its JSON form)
 * @property {"up"|"stalled"} state      stalled: accept, then never answer (the health path excepted)
 * @property {boolean} rootRedirect      `/` answers 308 (HTTP and WebSocket), as in the seed incident
 * @property {boolean} authBroken        every key is refused, the valid one included
 * @property {boolean} acksInscription   false: `start-inscription` is never acknowledged
 * @property {("polling"|"websocket")[]} transports
 * @property {string[] | null} corsOrigins  null reflects any Origin, as the python backend's "*"
 * @property {string} path               the Socket.IO path, without its trailing slash
 * @property {number} pingIntervalMs
 * @property {number} pingTimeoutMs
 * @property {number} maxHttpBufferSize
 * @property {number} stallEventLoopMs   0: never; else block the event loop this long, once per ping interval
 */

/**
 * @typedef {object} BackendConfig
 * @property {string} name
 * @property {string} scenario
 * @property {string} apiKey
 * @property {unknown[]} servers
 * @property {string} recommended
 * @property {Behaviour} behaviour
 */

/** @typedef {{tx_id: string, jobId: string, topic_id: string, transactionBytes: string, mode: unknown, network: unknown}} Job */
/** @typedef {Record<string, unknown>} Json */

// engine.io's own defaults (v6), also BackendBehaviour's: a switch left out changes nothing.
const DEFAULT_BEHAVIOUR = Object.freeze({
  state: "up",
  rootRedirect: false,
  authBroken: false,
  acksInscription: true,
  transports: /** @type {("polling"|"websocket")[]} */ (["polling", "websocket"]),
  corsOrigins: null,
  path: "/socket.io",
  // The lab's heartbeat (scenarios.LAB_PING_INTERVAL_MS), not engine.io's 25 s: a --deep hold sees one fast.
  pingIntervalMs: 2000,
  pingTimeoutMs: 20000,
  maxHttpBufferSize: 1e6,
  stallEventLoopMs: 0,
});

/** The config's snake_case keys, each with the check its value must pass. */
const BEHAVIOUR_KEYS = /** @type {const} */ ({
  // "down" backends are never started by the lab, so a down one here is a config error.
  state: ["state", (/** @type {unknown} */ v) => v === "up" || v === "stalled"],
  root_redirect: ["rootRedirect", (/** @type {unknown} */ v) => typeof v === "boolean"],
  auth_broken: ["authBroken", (/** @type {unknown} */ v) => typeof v === "boolean"],
  acks_inscription: ["acksInscription", (/** @type {unknown} */ v) => typeof v === "boolean"],
  transports: [
    "transports",
    (/** @type {unknown} */ v) =>
      Array.isArray(v) &&
      v.length > 0 &&
      new Set(v).size === v.length &&
      v.every((t) => t === "polling" || t === "websocket"),
  ],
  cors_origins: [
    "corsOrigins",
    (/** @type {unknown} */ v) =>
      v === null || (Array.isArray(v) && v.length > 0 && v.every((o) => typeof o === "string" && ORIGIN_RE.test(o))),
  ],
  path: ["path", (/** @type {unknown} */ v) => typeof v === "string" && PATH_RE.test(v)],
  // Whole seconds, as BackendBehaviour checks them (python-engineio counts in seconds).
  ping_interval_ms: ["pingIntervalMs", isWholeSeconds],
  ping_timeout_ms: ["pingTimeoutMs", isWholeSeconds],
  max_http_buffer_size: ["maxHttpBufferSize", isPositiveInt],
  stall_event_loop_ms: ["stallEventLoopMs", (/** @type {unknown} */ v) => v === 0 || isPositiveInt(v)],
});

/** @param {unknown} v */
function isPositiveInt(v) {
  return Number.isInteger(v) && /** @type {number} */ (v) > 0;
}

/** @param {unknown} v */
function isWholeSeconds(v) {
  return isPositiveInt(v) && /** @type {number} */ (v) % 1000 === 0;
}

class ConfigError extends Error {}

/**
 * @param {string} file
 * @param {string} name
 * @param {string} apiKey
 * @returns {BackendConfig}
 */
export function loadConfig(file, name, apiKey) {
  const data = JSON.parse(readFileSync(file, "utf8"));
  const raw = data?.backends?.[name];
  if (typeof raw !== "object" || raw === null) {
    throw new ConfigError(`${file}: no backends.${name}`);
  }
  /** @type {Record<string, unknown>} */
  const behaviour = { ...DEFAULT_BEHAVIOUR };
  for (const [key, value] of Object.entries(raw)) {
    const spec = BEHAVIOUR_KEYS[/** @type {keyof typeof BEHAVIOUR_KEYS} */ (key)];
    if (spec === undefined) throw new ConfigError(`${file}: backends.${name}: unknown switch ${key}`);
    const [field, valid] = spec;
    if (!valid(value)) throw new ConfigError(`${file}: backends.${name}.${key}: bad value ${JSON.stringify(value)}`);
    behaviour[field] = value;
  }
  if (typeof data.scenario !== "string" || !Array.isArray(data.servers) || typeof data.recommended !== "string") {
    throw new ConfigError(`${file}: needs scenario, servers and recommended`);
  }
  return {
    name,
    scenario: data.scenario,
    apiKey,
    servers: data.servers,
    recommended: data.recommended,
    behaviour: /** @type {Behaviour} */ (behaviour),
  };
}

/**
 * @param {BackendConfig} config
 * @param {unknown} candidate
 */
function keyMatches(config, candidate) {
  if (config.behaviour.authBroken || typeof candidate !== "string") return false;
  const a = Buffer.from(candidate);
  const b = Buffer.from(config.apiKey);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * The contract's required fields; the user-facing error message, or null.
 * @param {unknown} data
 * @returns {string | null}
 */
export function validateInscriptionRequest(data) {
  if (typeof data !== "object" || data === null || Array.isArray(data)) return "Request body must be a JSON object";
  const d = /** @type {Json} */ (data);
  if (typeof d.holderId !== "string" || !ACCOUNT_RE.test(d.holderId)) {
    return "holderId must be a Hedera account id such as 0.0.12345";
  }
  if (typeof d.mode !== "string" || !INSCRIPTION_MODES.has(d.mode)) {
    return `mode must be one of ${[...INSCRIPTION_MODES].sort().join(", ")}`;
  }
  if (d.network !== "mainnet" && d.network !== "testnet") return "network must be mainnet or testnet";
  const filled = (/** @type {unknown} */ v) => typeof v === "string" && v.length > 0;
  const hasUrl = filled(d.fileURL);
  const hasB64 = ["fileBase64", "fileName", "fileMimeType"].every((k) => filled(d[k]));
  if (!(hasUrl || hasB64 || sdkFile(d.file))) return "Provide fileURL, or fileBase64 with fileName and fileMimeType";
  return null;
}

/**
 * The SDK's socket request carries `file: {type: "url", url}` or
 * `file: {type: "base64", base64, fileName, mimeType}` instead of the REST fields.
 * @param {unknown} file
 */
function sdkFile(file) {
  if (typeof file !== "object" || file === null) return false;
  const f = /** @type {Json} */ (file);
  const filled = (/** @type {string} */ k) => typeof f[k] === "string" && /** @type {string} */ (f[k]).length > 0;
  if (f.type === "url") return filled("url");
  if (f.type === "base64") return ["base64", "fileName", "mimeType"].every(filled);
  return false;
}

/** The jobs a backend has started; in memory, as a mock needs no more. */
class InscriptionStore {
  /** @type {Map<string, Job>} */
  #byTx = new Map();

  /** @param {Json} request */
  start(request) {
    const nowNs = EPOCH_OFFSET_NS + process.hrtime.bigint();
    const seconds = nowNs / 1_000_000_000n;
    const nanos = (nowNs % 1_000_000_000n).toString().padStart(9, "0");
    // Same id shapes as the python backend: 0.0.X@S.N, job-<12 hex>, 0.0.<n>.
    const txId = `${request.holderId}@${seconds}.${nanos}`;
    const digest = createHash("sha256").update(txId).digest();
    /** @type {Job} */
    const job = {
      tx_id: txId,
      jobId: `job-${digest.subarray(0, 6).toString("hex")}`,
      topic_id: `0.0.${digest.readUIntBE(0, 3) + 1_000_000}`,
      // Not a real Hedera transaction: a recognisable placeholder the SDK can decode.
      transactionBytes: Buffer.concat([Buffer.from("kiloscribe-lab:"), digest]).toString("base64"),
      mode: request.mode,
      network: request.network,
    };
    this.#byTx.set(txId, job);
    return job;
  }

  /** @param {string} txId */
  get(txId) {
    return this.#byTx.get(txId);
  }
}

/**
 * The `cors` package's `origin`: null echoes any Origin (python-socketio's cors_allowed_origins="*",
 * the python backend's setting); one origin is passed as the string socket.io users write, which
 * the package sends as Access-Control-Allow-Origin whatever the request's Origin (naming the
 * allowed origin, as production servers do); several are a list, echoed only for a member.
 * @param {string[] | null} origins
 * @returns {boolean | string | string[]}
 */
function corsOrigin(origins) {
  if (origins === null) return true;
  return origins.length === 1 ? origins[0] : origins;
}

/**
 * Socket.IO server options from the behaviour; every one is a documented socket.io/engine.io option.
 * @param {Behaviour} b
 * @returns {Partial<import("socket.io").ServerOptions>}
 */
function socketOptions(b) {
  return {
    path: b.path,
    transports: b.transports,
    pingInterval: b.pingIntervalMs,
    pingTimeout: b.pingTimeoutMs,
    maxHttpBufferSize: b.maxHttpBufferSize,
    // The mock serves no browser bundle: /socket.io/socket.io.js is not part of the contract.
    serveClient: false,
    cors: { origin: corsOrigin(b.corsOrigins), credentials: true },
  };
}

/**
 * @param {BackendConfig} config
 * @param {InscriptionStore} store
 * @param {import("node:http").Server} httpServer
 */
function attachSocketIo(config, store, httpServer) {
  const io = new Server(httpServer, socketOptions(config.behaviour));
  if (config.behaviour.state === "stalled") {
    // An engine middleware that never calls next(): polling and WebSocket requests hang, as the
    // python backend's stalled servers do.
    io.engine.use(() => {});
  }
  io.use((socket, next) => {
    const auth = /** @type {Json | undefined} */ (socket.handshake.auth);
    next(keyMatches(config, auth?.apiKey) ? undefined : new Error(INVALID_KEY_MESSAGE));
  });
  io.on("connection", (socket) => {
    socket.on("start-inscription", (/** @type {unknown} */ data, /** @type {unknown} */ ack) => {
      if (!config.behaviour.acksInscription || typeof ack !== "function") return;
      const error = validateInscriptionRequest(data);
      if (error !== null) {
        ack({ success: false, error });
        return;
      }
      const job = store.start(/** @type {Json} */ (data));
      // One line per job in the backend's log: where a request landed, and that it did.
      console.log(`${new Date().toISOString()} start-inscription: job ${job.jobId}`);
      ack({ success: true, transactionBytes: job.transactionBytes, jobId: job.jobId, tx_id: job.tx_id });
      emitProgress(socket, job);
    });
  });
  return io;
}

/**
 * @param {import("socket.io").Socket} socket
 * @param {Job} job
 */
function emitProgress(socket, job) {
  PROGRESS_STEPS.forEach((progress, i) => {
    setTimeout(() => {
      const status = progress === 100 ? "completed" : "processing";
      socket.emit("inscription-progress", { jobId: job.jobId, status, progress, topicId: job.topic_id });
      if (progress === 100) socket.emit("inscription-complete", { topicId: job.topic_id });
    }, PROGRESS_INTERVAL_MS * (i + 1));
  });
}

/**
 * @param {import("node:http").ServerResponse} res
 * @param {number} status
 * @param {unknown} body
 * @param {Record<string, string>} [headers]
 */
function respond(res, status, body, headers = {}) {
  const isText = typeof body === "string";
  const payload = Buffer.from(isText ? body : JSON.stringify(body));
  res.writeHead(status, {
    "content-type": isText ? "text/plain" : "application/json",
    "content-length": String(payload.length),
    ...headers,
  });
  res.end(payload);
}

/**
 * @param {import("node:http").IncomingMessage} req
 * @returns {Promise<Buffer>}
 */
async function readBody(req) {
  /** @type {Buffer[]} */
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > REST_BODY_LIMIT) throw new RangeError("request body too large");
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/**
 * The mock REST API (everything Engine.IO does not intercept); a handful of routes needs no framework.
 * @param {BackendConfig} config
 * @param {InscriptionStore} store
 */
function restHandler(config, store) {
  /**
   * @param {import("node:http").IncomingMessage} req
   * @param {import("node:http").ServerResponse} res
   */
  return async (req, res) => {
    const url = new URL(req.url ?? "/", "http://lab.invalid");
    if (url.pathname === HEALTH_PATH) {
      respond(res, 200, { status: "ok", backend: config.name, scenario: config.scenario });
      return;
    }
    if (config.behaviour.state === "stalled") return; // accepted, never answered
    if (url.pathname === "/") {
      if (config.behaviour.rootRedirect) respond(res, 308, "Permanent Redirect", { location: HEALTH_PATH });
      else respond(res, 200, "Kiloscribe inscription service (lab)\n");
      return;
    }
    if (!url.pathname.startsWith("/api/inscriptions/")) {
      respond(res, 404, { message: "Not found" });
      return;
    }
    if (!keyMatches(config, req.headers["x-api-key"])) {
      respond(res, 401, { message: INVALID_KEY_MESSAGE });
      return;
    }
    const route = url.pathname.slice("/api/inscriptions/".length);
    if (route === "websocket-servers" && req.method === "GET") {
      respond(res, 200, { servers: config.servers, recommended: config.recommended });
    } else if (route === "start-inscription" && req.method === "POST") {
      /** @type {unknown} */
      let data;
      try {
        const body = await readBody(req);
        data = body.length ? JSON.parse(body.toString("utf8")) : null;
      } catch {
        respond(res, 400, { message: "Request body is not valid JSON" });
        return;
      }
      const error = validateInscriptionRequest(data);
      if (error !== null) {
        respond(res, 400, { message: error });
        return;
      }
      const job = store.start(/** @type {Json} */ (data));
      respond(res, 200, { transactionBytes: job.transactionBytes, tx_id: job.tx_id });
    } else if (route === "retrieve-inscription" && req.method === "GET") {
      const match = RETRIEVE_ID_RE.exec(url.searchParams.get("id") ?? "");
      if (match === null) {
        respond(res, 400, { message: "id must look like 0.0.X-S-N" });
        return;
      }
      const txId = `${match[1]}@${match[2]}.${match[3]}`;
      const found = store.get(txId);
      if (found === undefined) {
        respond(res, 404, { message: `Inscription ${txId} not found` });
        return;
      }
      respond(res, 200, {
        id: txId,
        status: "completed",
        completed: true,
        topic_id: found.topic_id,
        mode: found.mode,
        network: found.network,
      });
    } else if (["websocket-servers", "start-inscription", "retrieve-inscription"].includes(route)) {
      respond(res, 405, { message: "Method not allowed" });
    } else {
      respond(res, 404, { message: "Not found" });
    }
  };
}

/**
 * Name the backend on a raw upgrade socket's response head. engine.io's "headers" event covers
 * the 101 only; its refusals (`abortUpgrade`: a raw "HTTP/1.1 400") bypass every hook, and a lab
 * test must still see where a refused upgrade landed. Both are written with one socket.write.
 * @param {import("node:stream").Duplex} socket
 * @param {string} name
 */
function tagUpgradeResponse(socket, name) {
  const write = socket.write;
  socket.write = /** @type {typeof socket.write} */ (
    function (/** @type {unknown} */ chunk, /** @type {any[]} */ ...rest) {
      socket.write = write; // only the first write can be a response head
      if (typeof chunk === "string" && chunk.startsWith("HTTP/1.1 ")) {
        const eol = chunk.indexOf("\r\n");
        chunk = `${chunk.slice(0, eol)}\r\n${BACKEND_HEADER}: ${name}${chunk.slice(eol)}`;
      }
      return Reflect.apply(write, socket, [chunk, ...rest]);
    }
  );
}

/**
 * Block the event loop for `ms` after every `everyMs` of free time: engine.io's ping timer, like
 * every other callback, then fires late (the slow-heartbeat scenario). Atomics.wait blocks the
 * thread without spinning a core, as python's time.sleep does in backend.py.
 * @param {number} ms
 * @param {number} everyMs
 */
function stallEventLoop(ms, everyMs) {
  const cell = new Int32Array(new SharedArrayBuffer(4));
  const timer = setTimeout(() => {
    Atomics.wait(cell, 0, 0, ms);
    stallEventLoop(ms, everyMs);
  }, everyMs);
  timer.unref();
}

/** @param {string[]} argv */
async function main(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: "string" },
      name: { type: "string" },
      port: { type: "string" },
      host: { type: "string", default: "127.0.0.1" },
      "api-key-env": { type: "string", default: "KILOSCRIBE_API_KEY" },
    },
    strict: true,
  });
  if (!values.config || !values.name || !values.port || !/^\d+$/.test(values.port)) {
    console.error("usage: server.mjs --config FILE --name NAME --port P [--api-key-env NAME] [--host H]");
    process.exit(2);
  }
  const keyEnv = values["api-key-env"] ?? "KILOSCRIBE_API_KEY";
  // A backend with no key would accept nothing; a random one keeps that explicit.
  const apiKey = process.env[keyEnv] || randomBytes(24).toString("base64url");
  const config = loadConfig(values.config, values.name, apiKey);
  const store = new InscriptionStore();

  const httpServer = createServer(restHandler(config, store));
  const io = attachSocketIo(config, store, httpServer);
  // Prepended so it runs before engine.io's own listener: setHeader survives engine.io's
  // writeHead(), so REST answers, polling payloads and engine.io's 400/403 all carry it.
  httpServer.prependListener("request", (_req, res) => res.setHeader(BACKEND_HEADER, config.name));
  // Only where engine.io itself listens for upgrades: with no "upgrade" listener at all, Node hands an
  // upgrade request to the "request" listeners (engine.io then answers 400 code 0, the REST "/" its 308).
  if (config.behaviour.transports.includes("websocket")) {
    httpServer.prependListener("upgrade", (req, socket) => {
      tagUpgradeResponse(socket, config.name);
      if (config.behaviour.rootRedirect && req.url === "/") {
        // wscat pointed at "/" in the seed incident saw this 308; engine.io would hang up after 1 s.
        // Written whole here (socket.end bypasses the tagging write): the python backend's denial response.
        socket.end(
          "HTTP/1.1 308 Permanent Redirect\r\n" +
            `${BACKEND_HEADER}: ${config.name}\r\nlocation: ${HEALTH_PATH}\r\n` +
            "content-type: text/plain\r\ncontent-length: 18\r\nconnection: close\r\n\r\nPermanent Redirect",
        );
      }
    });
  }
  if (config.behaviour.stallEventLoopMs > 0) {
    stallEventLoop(config.behaviour.stallEventLoopMs, config.behaviour.pingIntervalMs);
  }

  const stop = () => {
    // io.close() closes every Engine.IO client and the HTTP server; idle keep-alive sockets
    // and hung (stalled) requests would hold it open, so they are cut too.
    io.close();
    httpServer.closeAllConnections();
    setTimeout(() => process.exit(0), SHUTDOWN_GRACE_MS).unref();
  };
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);

  await new Promise((resolve, reject) => {
    httpServer.once("error", reject);
    httpServer.listen(Number(values.port), values.host, () => resolve(undefined));
  });
  console.log(JSON.stringify({ event: "listening", backend: config.name, port: Number(values.port), pid: process.pid }));
}

main(process.argv.slice(2)).catch((/** @type {unknown} */ err) => {
  console.error(err instanceof ConfigError ? err.message : err);
  process.exit(err instanceof ConfigError ? 2 : 1);
});

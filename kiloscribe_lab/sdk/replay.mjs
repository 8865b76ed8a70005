// kiloscribe-lab sdk replay: drive the published @kiloscribe/inscription-sdk against one endpoint.
//
// Run by kiloscribe_lab/sdk/check.py as `node [--experimental-websocket] replay.mjs CONFIG_JSON`.
// CONFIG_JSON carries no secret: the API key is read from the environment variable it names.
// Output: JSON lines on stdout, one record per finished step, so a replay stopped at a deadline
// still hands over what it saw. The SDK's console output (its Logger) is captured, attributed
// to the step that caused it, and never printed.
//
// Steps (the SDK's own methods, on fresh SDK instances, run concurrently so the replay costs
// the SDK's longest timer, not their sum):
//   connect-valid      connectWebSocket() with the configured key
//   connect-invalid    connectWebSocket() with a deliberately invalid key
//   detect             detectBestConnection()          (what connectionMode 'auto' runs)
//   discover           fetchWebSocketServers() via the REST base (only with an API base)
//   start-inscription  inscribeViaWebSocket() on the connected instance, stopped at the ack:
//                      executeTransaction is replaced on that instance, so no Hedera
//                      transaction is built, signed or sent.

import { AsyncLocalStorage } from 'node:async_hooks';
import crypto from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { format } from 'node:util';

const T0 = performance.now();
const now = () => Math.round((performance.now() - T0) * 1000) / 1000;
const cfg = JSON.parse(process.argv[2]);
const apiKey = cfg.api_key_env ? process.env[cfg.api_key_env] || '' : '';
const MAX_LOG_LINES = 200;
const MAX_TEXT = 2000;

// --- output ------------------------------------------------------------------------------

function redact(value) {
  if (typeof value === 'string') {
    const text = apiKey ? value.split(apiKey).join('[redacted]') : value;
    return text.length > MAX_TEXT ? text.slice(0, MAX_TEXT) + '…' : text;
  }
  if (Array.isArray(value)) return value.map(redact);
  if (value && typeof value === 'object') {
    const copy = {};
    for (const [k, v] of Object.entries(value)) copy[k] = redact(v);
    return copy;
  }
  return value;
}

let lastWrite = Promise.resolve();
function emit(record) {
  const line = JSON.stringify(redact(record)) + '\n';
  lastWrite = new Promise((resolve) => process.stdout.write(line, () => resolve()));
}

async function finish(code) {
  await lastWrite;
  process.exit(code);
}

// --- the SDK's log lines -------------------------------------------------------------------

const steps = new AsyncLocalStorage();
const looseLogs = [];
const uncaught = [];
for (const level of ['log', 'info', 'debug', 'warn', 'error', 'trace']) {
  console[level] = (...args) => {
    const store = steps.getStore();
    const sink = store ? store.logs : looseLogs;
    if (sink.length < MAX_LOG_LINES) sink.push({ level, text: format(...args), t_ms: now() });
  };
}
process.on('uncaughtException', (err) => uncaught.push(String((err && err.stack) || err)));
process.on('unhandledRejection', (err) => uncaught.push(String((err && err.stack) || err)));

// --- the runtime ---------------------------------------------------------------------------

const nodeOptions = process.env.NODE_OPTIONS || '';
let websocketGlobal = 'none';
if (typeof globalThis.WebSocket === 'function') {
  const flagged = process.execArgv.includes('--experimental-websocket') ||
    nodeOptions.includes('--experimental-websocket');
  websocketGlobal = flagged ? 'flag' : 'native';
} else if (cfg.websocket === 'shim') {
  // Before the SDK is imported: its bundled engine.io-client reads the global at load time.
  const require = createRequire(cfg.sdk_root + '/package.json');
  globalThis.WebSocket = require('ws');
  websocketGlobal = 'ws-shim';
}

const runtime = {
  kind: 'runtime',
  mode: cfg.mode,
  node_version: process.version,
  node_path: process.execPath,
  exec_argv: process.execArgv,
  node_options: nodeOptions || null,
  websocket_global: websocketGlobal,
  xmlhttprequest: typeof globalThis.XMLHttpRequest === 'function',
  platform: `${process.platform}-${process.arch}`,
  t0_epoch_ms: Date.now() - (performance.now() - T0),
  sdk_version: cfg.sdk_version,
};

let InscriptionSDK;
try {
  const started = now();
  ({ InscriptionSDK } = await import(pathToFileURL(cfg.sdk_entry).href));
  runtime.import_ms = now() - started;
} catch (err) {
  emit(runtime);
  emit({ kind: 'fatal', stage: 'import', message: String((err && err.message) || err), logs: looseLogs });
  await finish(0);
}
emit(runtime);

// --- helpers -------------------------------------------------------------------------------

function settle(promise, ms) {
  let timer;
  const deadline = new Promise((resolve) => {
    timer = setTimeout(() => resolve({ kind: 'deadline' }), ms);
  });
  const settled = promise.then(
    (value) => ({ kind: 'resolved', value }),
    (error) => ({ kind: 'rejected', error }),
  );
  return Promise.race([settled, deadline]).finally(() => clearTimeout(timer));
}

function newSdk(key, { discover = false } = {}) {
  // wsBaseUrl is always given to the constructor: without it the constructor fetches the
  // server list at once, from the SDK's hard-coded production base, before we can redirect it.
  const sdk = new InscriptionSDK({ apiKey: key, network: cfg.network, wsBaseUrl: cfg.ws_url });
  sdk.client.defaults.baseURL = cfg.api_base || cfg.no_api_base;
  if (discover) sdk.wsBaseUrl = null;
  return sdk;
}

function describeConnectError(err) {
  const d = err && err.description;
  const parts = [];
  if (d && typeof d === 'object') {
    if (d.message) parts.push(String(d.message));
    const inner = d.error;
    if (inner && inner.message && inner.message !== d.message) parts.push(String(inner.message));
    if (inner && inner.code) parts.push(String(inner.code));
    if (inner && inner.cause) parts.push(String(inner.cause.code || inner.cause.message || inner.cause));
  } else if (d !== undefined && d !== null) {
    parts.push(String(d));
  }
  const described = {
    message: String((err && err.message) || err),
    type: (err && err.type) || null,
    description: parts.length ? parts.join('; ') : null,
  };
  if (err && err.data !== undefined) described.server_data = err.data;
  return described;
}

function engineState(sdk) {
  try {
    const socket = sdk && sdk.socket;
    const manager = socket && socket.io;
    const engine = manager && manager.engine;
    return {
      socket_connected: Boolean(socket && socket.connected),
      manager: (manager && manager._readyState) || null,
      engine: (engine && engine.readyState) || null,
      transport: (engine && engine.transport && engine.transport.name) || null,
    };
  } catch {
    return null;
  }
}

function classifyNodeError(err) {
  const code = String((err && err.code) || '');
  const text = String((err && err.message) || '');
  if (code === 'ECONNREFUSED') return 'refused';
  if (code === 'ECONNRESET' || code === 'EPIPE' || /socket hang up/i.test(text)) return 'reset';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'dns';
  if (code === 'ETIMEDOUT') return 'timeout';
  if (/CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO_VERIFY/i.test(code) || /certificate|ssl|tls/i.test(text)) return 'tls';
  return 'error';
}

// Node's own WebSocket says only "Received network error or non-101 status code": after a
// transport error, one upgrade request to the same engine path tells which it was.
function transportCheck(wsUrl, ms) {
  return new Promise((resolve) => {
    let url;
    try {
      url = new URL(wsUrl);
    } catch (err) {
      resolve({ kind: 'error', message: String(err) });
      return;
    }
    const secure = url.protocol === 'https:' || url.protocol === 'wss:';
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const started = now();
    let finished = false;
    let req;
    const done = (result) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      try {
        req.destroy();
      } catch {}
      resolve({ ...result, elapsed_ms: now() - started });
    };
    const timer = setTimeout(() => done({ kind: 'timeout' }), ms);
    const options = {
      host,
      port: url.port || (secure ? 443 : 80),
      path: '/socket.io/?EIO=4&transport=websocket',
      method: 'GET',
      agent: false,
      headers: {
        Host: url.host,
        Connection: 'Upgrade',
        Upgrade: 'websocket',
        'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': crypto.randomBytes(16).toString('base64'),
      },
    };
    if (secure && !net.isIP(host)) options.servername = host;
    req = (secure ? https : http).request(options);
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      done({ kind: 'http', status: res.statusCode });
    });
    req.on('response', (res) => {
      res.resume();
      done({ kind: 'http', status: res.statusCode, server: res.headers.server || null });
    });
    req.on('error', (err) => done({ kind: classifyNodeError(err), code: err.code || null, message: err.message }));
    req.end();
  });
}

function inStep(name, credential, sdkTimerMs, body) {
  const step = { kind: 'step', step: name, credential, sdk_timer_ms: sdkTimerMs, logs: [], observed: {} };
  return steps.run(step, async () => {
    step.started_ms = now();
    try {
      await body(step);
    } catch (err) {
      step.result = 'threw';
      step.sdk_message = String((err && err.message) || err);
    }
    if (step.elapsed_ms === undefined) step.elapsed_ms = now() - step.started_ms;
    emit(step);
    return step;
  });
}

// --- steps ---------------------------------------------------------------------------------

const keepOpen = {};

function connectStep(name, credential, key) {
  return inStep(name, credential, 10000, async (step) => {
    const sdk = newSdk(key);
    const connectErrors = [];
    step.observed.connect_errors = connectErrors;
    const promise = sdk.connectWebSocket();
    if (sdk.socket) sdk.socket.on('connect_error', (err) => connectErrors.push(describeConnectError(err)));
    step.deadline_ms = cfg.deadlines.connect_ms;
    const r = await settle(promise, cfg.deadlines.connect_ms);
    step.elapsed_ms = now() - step.started_ms;
    step.result = r.kind;
    if (r.kind === 'rejected') {
      step.sdk_message = String((r.error && r.error.message) || r.error);
      step.error_name = (r.error && r.error.name) || null;
    }
    step.observed.engine = engineState(sdk);
    if (connectErrors.some((e) => e.type === 'TransportError')) {
      step.observed.transport_check = await transportCheck(cfg.ws_url, cfg.deadlines.check_ms);
    }
    if (r.kind === 'resolved' && name === 'connect-valid' && cfg.start_inscription) {
      keepOpen.sdk = sdk;
    } else {
      sdk.disconnect();
    }
  });
}

function detectStep(credential, key) {
  return inStep('detect', credential, 3000, async (step) => {
    const sdk = newSdk(key);
    step.deadline_ms = cfg.deadlines.detect_ms;
    const r = await settle(sdk.detectBestConnection(), cfg.deadlines.detect_ms);
    step.elapsed_ms = now() - step.started_ms;
    step.result = r.kind;
    if (r.kind === 'resolved') step.value = r.value;
    if (r.kind === 'rejected') step.sdk_message = String((r.error && r.error.message) || r.error);
  });
}

function discoverStep(credential, key) {
  return inStep('discover', credential, null, async (step) => {
    const sdk = newSdk(key, { discover: true });
    sdk.client.interceptors.response.use(
      (res) => {
        step.observed.http = { status: res.status };
        return res;
      },
      (err) => {
        step.observed.http = {
          status: (err && err.response && err.response.status) || null,
          code: (err && err.code) || null,
          message: String((err && err.message) || err),
          body_message: (err && err.response && err.response.data && err.response.data.message) || null,
        };
        return Promise.reject(err);
      },
    );
    step.deadline_ms = cfg.deadlines.discover_ms;
    const r = await settle(sdk.fetchWebSocketServers(), cfg.deadlines.discover_ms);
    step.elapsed_ms = now() - step.started_ms;
    step.result = r.kind;
    step.value = sdk.wsBaseUrl || null;
  });
}

class AckReached extends Error {}

function startInscriptionStep(sdk) {
  return inStep('start-inscription', 'valid', null, async (step) => {
    const socket = sdk.socket;
    const events = [];
    const progress = [];
    step.observed.events = events;
    step.observed.progress_callbacks = progress;
    const originalEmit = socket.emit;
    socket.emit = function (event, ...args) {
      if (event === 'start-inscription' && typeof args[args.length - 1] === 'function') {
        const callback = args.pop();
        step.observed.payload_keys = Object.keys(args[0] || {}).sort();
        step.observed.emitted_ms = now();
        args.push(function (response) {
          step.ack_ms = now();
          const r = response && typeof response === 'object' ? response : { value: response };
          step.ack = {
            success: r.success === undefined ? null : r.success,
            error: r.error === undefined ? null : r.error,
            transaction_bytes: typeof r.transactionBytes === 'string' ? r.transactionBytes.length : null,
            job_id: r.jobId || null,
            tx_id: r.tx_id || null,
          };
          return callback.apply(this, arguments);
        });
      }
      return originalEmit.call(this, event, ...args);
    };
    for (const event of ['inscription-progress', 'inscription-complete', 'inscription-error']) {
      socket.on(event, (data) => events.push({ event, t_ms: now(), status: (data && data.status) || null }));
    }
    // The SDK hands the ack's transactionBytes to executeTransaction: stop there.
    sdk.executeTransaction = async () => {
      throw new AckReached('stopped at the ack: no Hedera transaction');
    };
    step.deadline_ms = cfg.deadlines.ack_ms;
    const dryClient = { accountId: '0.0.1', privateKey: '', network: cfg.network };
    const r = await settle(
      sdk.inscribeViaWebSocket(cfg.request, dryClient, (p) => progress.push(p && p.message)),
      cfg.deadlines.ack_ms,
    );
    step.elapsed_ms = now() - step.started_ms;
    if (r.kind === 'rejected' && r.error instanceof AckReached) {
      step.result = 'ack';
    } else {
      step.result = r.kind;
      if (r.kind === 'rejected') step.sdk_message = String((r.error && r.error.message) || r.error);
      if (r.kind === 'resolved') step.value = r.value;
    }
    socket.emit = originalEmit;
    sdk.disconnect();
  });
}

// --- main ----------------------------------------------------------------------------------

const backstop = setTimeout(() => {
  emit({ kind: 'fatal', stage: 'deadline', message: `replay stopped itself after ${cfg.deadlines.total_ms} ms` });
  finish(0);
}, cfg.deadlines.total_ms);
backstop.unref();

const first = [];
if (apiKey) first.push(connectStep('connect-valid', 'valid', apiKey));
first.push(connectStep('connect-invalid', 'invalid', cfg.invalid_key));
first.push(detectStep(apiKey ? 'valid' : 'invalid', apiKey || cfg.invalid_key));
if (cfg.api_base) first.push(discoverStep(apiKey ? 'valid' : 'invalid', apiKey || cfg.invalid_key));
await Promise.all(first);
if (keepOpen.sdk) await startInscriptionStep(keepOpen.sdk);

emit({ kind: 'done', total_ms: now(), logs: looseLogs, uncaught });
await finish(0);

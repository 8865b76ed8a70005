// @ts-check
/**
 * The reference Socket.IO server as its documentation starts it: socket.io 4.8 with default
 * options (path /socket.io, both transports, no CORS configuration, pingInterval 25 s, 1 MB
 * messages), no auth, nothing of the Kiloscribe mock. An `echo` event is acknowledged with its
 * data, so a client can see the application answer.
 *
 *   node reference-server.mjs [--port P] [--ping-interval MS] [--max-http-buffer-size BYTES]
 *
 * The two options are the server's own (engine.io's pingInterval, maxHttpBufferSize), for the
 * slow-fault tests: unset, the defaults stand.
 *
 * Bound to loopback; port 0 (the default) lets the kernel pick: it is in the "listening" line.
 * Other paths get what a standalone `new Server(port)` answers: 404, empty body.
 */
import { createServer } from "node:http";
import { parseArgs } from "node:util";
import { Server } from "socket.io";

const { values } = parseArgs({
  options: {
    port: { type: "string", default: "0" },
    "ping-interval": { type: "string" },
    "max-http-buffer-size": { type: "string" },
  },
});
/** @type {{pingInterval?: number, maxHttpBufferSize?: number}} */
const options = {};
if (values["ping-interval"] !== undefined) options.pingInterval = Number(values["ping-interval"]);
if (values["max-http-buffer-size"] !== undefined) options.maxHttpBufferSize = Number(values["max-http-buffer-size"]);
const httpServer = createServer((_req, res) => {
  res.writeHead(404);
  res.end();
});
const io = new Server(httpServer, options);
io.on("connection", (socket) => {
  socket.on("echo", (/** @type {unknown} */ data, /** @type {unknown} */ ack) => {
    if (typeof ack === "function") ack(data);
  });
});
httpServer.listen(Number(values.port), "127.0.0.1", () => {
  const address = httpServer.address();
  const port = typeof address === "object" && address !== null ? address.port : Number(values.port);
  console.log(JSON.stringify({ event: "listening", server: "socket.io", port }));
});
process.once("SIGTERM", () => {
  io.close();
  httpServer.closeAllConnections();
  setTimeout(() => process.exit(0), 500).unref();
});

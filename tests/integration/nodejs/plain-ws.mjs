// @ts-check
/**
 * A plain WebSocket server (npm `ws`, no Engine.IO): what a user who confused the two deployed.
 * It accepts an upgrade on any path, optionally greets, and echoes text frames.
 *
 *   node plain-ws.mjs [--port P] [--greeting TEXT]
 *
 * Port 0 (the default) lets the kernel pick; the port is in the JSON "listening" line.
 */
import { parseArgs } from "node:util";
import { WebSocketServer } from "ws";

const { values } = parseArgs({ options: { port: { type: "string", default: "0" }, greeting: { type: "string" } } });
// `{port}` makes ws create its own http.Server, whose plain requests get ws's 426 "Upgrade Required".
const wss = new WebSocketServer({ port: Number(values.port), host: "127.0.0.1" });
wss.on("connection", (socket) => {
  if (values.greeting !== undefined) socket.send(values.greeting);
  socket.on("message", (data, isBinary) => socket.send(data, { binary: isBinary }));
});
wss.on("listening", () => {
  const address = wss.address();
  const port = typeof address === "object" && address !== null ? address.port : Number(values.port);
  console.log(JSON.stringify({ event: "listening", server: "ws", port }));
});
process.once("SIGTERM", () => {
  for (const client of wss.clients) client.terminate();
  wss.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 500).unref();
});

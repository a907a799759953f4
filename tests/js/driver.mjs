// A scripted socket.io-client (the official JavaScript client, as the mobile app uses it), for the Python tests.
//
//   node driver.mjs <url> <namespace> <auth|query|header|none> [token]
//
// Reads commands from stdin, one JSON object per line:
//   {"id": 1, "emit": "updateUserLocation", "data": {...}, "ack": true}   emit (and wait for the ack if asked)
//   {"close": true}                                                       disconnect and exit
// Writes what happens to stdout, one JSON object per line:
//   {"type": "connect", "id": "<socket id>"}      {"type": "event", "event": "vendor_sync", "data": {...}}
//   {"type": "ack", "id": 1, "data": {...}}       {"type": "disconnect", "reason": "..."}
//   {"type": "connect_error", "message": "...", "data": ...}
import { createInterface } from "node:readline";
import { io } from "socket.io-client";

const [url, namespace, mode, token = ""] = process.argv.slice(2);
const options = { transports: ["websocket"], reconnection: false, timeout: 10000 };
if (mode === "auth") options.auth = { token };
if (mode === "query") options.query = { token };
if (mode === "header") options.extraHeaders = { Authorization: `Bearer ${token}` };

const out = (message) => process.stdout.write(JSON.stringify(message) + "\n");
const socket = io(url + namespace, options);

socket.on("connect", () => out({ type: "connect", id: socket.id }));
socket.on("disconnect", (reason) => out({ type: "disconnect", reason }));
socket.on("connect_error", (err) => out({ type: "connect_error", message: err.message, data: err.data ?? null }));
socket.onAny((event, data) => out({ type: "event", event, data: data ?? null }));

const lines = createInterface({ input: process.stdin });
lines.on("line", async (line) => {
  const command = JSON.parse(line);
  if (command.close) {
    socket.disconnect();
    setTimeout(() => process.exit(0), 50);
    return;
  }
  if (command.ack) {
    const data = await socket.timeout(10000).emitWithAck(command.emit, command.data);
    out({ type: "ack", id: command.id, data });
  } else {
    socket.emit(command.emit, command.data);
  }
});
lines.on("close", () => {
  socket.disconnect();
  process.exit(0);
});

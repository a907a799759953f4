// The load of bench/websocket_fanout.py: N watchers and one moving vendor, every one its own Socket.IO connection
// (socket.io-client, the official client the mobile app uses), all in this one Node.js process, so the load costs
// the machine one event loop instead of a thousand Python clients' worth.
//
//   node fanout.mjs '<round as JSON>'
//
// The round: {"url", "watchers", "updates", "rate", "userToken", "vendorToken", "vendorId", "viewport",
//             "base": {"lat", "long"}, "step", "waitS"}
// Each watcher connects to /user, sends its viewport (updateUserLocation) and waits until the vendor is in the
// vendor_channels answer; then the vendor (on /vendor) sends `updates` positions at `rate` per second, step k at
// base.lat + k * step, and every watcher times each vendor_sync from the moment its step was sent (one clock: one
// process). Prints one JSON line: {"delivered", "expected", "perS", "p50Ms", "p99Ms", "connectS"}; exits 1 on a
// connection that failed.
import { performance } from "node:perf_hooks";
import { io } from "socket.io-client";

const round = JSON.parse(process.argv[2]);
const BATCH = 50;

function connect(namespace, token) {
  const socket = io(round.url + namespace, {
    transports: ["websocket"],
    reconnection: false,
    forceNew: true, // one connection per client: without it, clients of one URL share a Manager's socket
    timeout: 30000,
    ...(token ? { auth: { token } } : {}),
  });
  return new Promise((resolve, reject) => {
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", (err) => reject(new Error(`${namespace}: ${err.message}`)));
  });
}

function within(promise, seconds, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing after ${seconds} s`)), seconds * 1000);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const sent = new Map(); // step -> when it was sent (ms)
const latencies = [];
const expected = round.watchers * round.updates;
let lastAt = 0;
let allIn;
const everyDelivery = new Promise((resolve) => (allIn = resolve));

async function watcher() {
  const socket = await connect("/user", round.userToken);
  socket.on("vendor_sync", (data) => {
    const now = performance.now();
    const step = Math.round((data.location.lat - round.base.lat) / round.step);
    const at = sent.get(step);
    if (at === undefined) return;
    latencies.push(now - at);
    lastAt = now;
    if (latencies.length >= expected) allIn();
  });
  const joined = new Promise((resolve) => {
    socket.on("vendor_channels", (data) => {
      if (data && data.length) resolve();
    });
  });
  socket.emit("updateUserLocation", round.viewport);
  await within(joined, 30, "a watcher's vendor_channels");
  return socket;
}

function quantile(sorted, q) {
  if (!sorted.length) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

async function main() {
  const vendor = await connect("/vendor", round.vendorToken);
  // the vendor is on the map before anyone looks, so every watcher's viewport finds it
  await vendor
    .timeout(10000)
    .emitWithAck("updateVendorLocation", { vendorId: round.vendorId, lat: round.base.lat, long: round.base.long });
  const connectStarted = performance.now();
  const watchers = [];
  for (let start = 0; start < round.watchers; start += BATCH) {
    const batch = Math.min(BATCH, round.watchers - start);
    watchers.push(...(await Promise.all(Array.from({ length: batch }, watcher))));
  }
  const connectS = (performance.now() - connectStarted) / 1000;
  const started = performance.now();
  for (let step = 1; step <= round.updates; step++) {
    const due = started + ((step - 1) * 1000) / round.rate;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    sent.set(step, performance.now());
    vendor.emit("updateVendorLocation", {
      vendorId: round.vendorId,
      lat: round.base.lat + step * round.step,
      long: round.base.long,
    });
  }
  // what did not arrive within waitS is reported as missing
  await within(everyDelivery, round.waitS ?? 60, "every delivery").catch(() => {});
  vendor.disconnect();
  for (const socket of watchers) socket.disconnect();
  const sorted = latencies.slice().sort((a, b) => a - b);
  const elapsedS = Math.max(lastAt - started, 1e-6) / 1000;
  process.stdout.write(
    JSON.stringify({
      delivered: latencies.length,
      expected,
      perS: latencies.length / elapsedS,
      p50Ms: quantile(sorted, 0.5),
      p99Ms: quantile(sorted, 0.99),
      connectS,
    }) + "\n",
  );
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`fanout.mjs: ${err.message}\n`);
    process.exit(1);
  },
);

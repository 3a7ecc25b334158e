// The original architecture's realtime stack, for bench/ws_fanout.py: Socket.IO 4 with the
// Redis adapter.
//   node server.js serve <port> <redis url>   holds the sockets; prints "ready" when listening
//   node server.js emit <redis url> <count> <interval s>
//                                             another process that broadcasts through Redis,
//                                             as a second instance of the app would
const http = require("http");
const { Server } = require("socket.io");
const { createAdapter } = require("@socket.io/redis-adapter");
const { createClient } = require("redis");

async function adapterFor(io, url) {
  const pub = createClient({ url });
  const sub = pub.duplicate();
  await Promise.all([pub.connect(), sub.connect()]);
  io.adapter(createAdapter(pub, sub));
  return [pub, sub];
}

async function serve(port, url) {
  const server = http.createServer();
  // WebSocket only, no long-polling and no per-message compression: what Rankly's clients get.
  const io = new Server(server, { transports: ["websocket"], perMessageDeflate: false });
  await adapterFor(io, url);
  server.listen(port, "127.0.0.1", 1024, () => console.log("ready"));
}

async function emit(url, count, interval) {
  const io = new Server();
  const clients = await adapterFor(io, url);
  for (let seq = 0; seq < count; seq++) {
    io.emit("ranking.submitted", {
      type: "ranking.submitted",
      data: { seq },
      ts: new Date().toISOString(),
    });
    await new Promise((resolve) => setTimeout(resolve, interval * 1000));
  }
  await Promise.all(clients.map((client) => client.quit()));
  io.close();
}

const [role, ...args] = process.argv.slice(2);
if (role === "serve") serve(Number(args[0]), args[1]);
else if (role === "emit") emit(args[0], Number(args[1]), Number(args[2])).then(() => process.exit(0));
else {
  console.error("usage: server.js serve <port> <redis url> | emit <redis url> <count> <interval>");
  process.exit(2);
}

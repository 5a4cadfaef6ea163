// The benchmark's next-auth peer without a framework: next-auth 4.24.15's own request
// handler (`AuthHandler` from `next-auth/core`, the pinned copy in tests/node) behind a
// plain Node `http` server, with the options of bench/nextjs/options.js.
//
//   node bench/nextauth_core.js serve PORT     # prints {"listening": PORT} once it does
//   node bench/nextauth_core.js mint           # stdin {"claims", "maxAge"} -> stdout token
//
// The adapter does what next-auth's own Next.js adapter (`NextAuthApiHandler` in
// next-auth/next) does with the request Next.js parsed for it, and no more: the query
// (with the `nextauth` path segments taken out), the cookies (the `cookie` package, as
// Next.js parses them), the body (JSON or urlencoded, as Next.js's API body parser reads
// them, up to its 1 MB default), the method and headers; then the status, the headers,
// each cookie serialised onto Set-Cookie, a redirect as a 302 (or `{"url"}` with
// `json=true`), and the body (JSON for an object, as `res.send` does).
"use strict";

const http = require("node:http");
const path = require("node:path");
const { createRequire } = require("node:module");

const nodeDir = path.resolve(__dirname, "..", "tests", "node");
const load = createRequire(path.join(nodeDir, "package.json"));
// `next-auth/core` is not in the package's exports map: required by its file path.
const { AuthHandler } = load(path.join(nodeDir, "node_modules", "next-auth", "core"));
const Credentials = load("next-auth/providers/credentials").default;
const { encode } = load("next-auth/jwt");
const cookie = load("cookie");
const { authOptions } = require("./nextjs/options");

const PREFIX = "/api/auth/";
const MAX_BODY = 1024 * 1024;
const options = authOptions(Credentials);

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on("data", (chunk) => {
      size += chunk.length;
      if (size > MAX_BODY) reject(Object.assign(new Error("body too large"), { status: 413 }));
      else chunks.push(chunk);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

async function parseBody(req) {
  if (req.method !== "POST" && req.method !== "PUT" && req.method !== "PATCH") return undefined;
  const text = await readBody(req);
  const type = (req.headers["content-type"] || "").split(";")[0].trim().toLowerCase();
  if (type === "application/json") return text ? JSON.parse(text) : {};
  if (type === "application/x-www-form-urlencoded") {
    return Object.fromEntries(new URLSearchParams(text));
  }
  return text;
}

function send(res, status, headers, cookies, body) {
  res.statusCode = status;
  for (const { key, value } of headers) res.setHeader(key, value);
  if (cookies.length) res.setHeader("Set-Cookie", cookies);
  if (body === undefined || body === null) {
    res.end();
    return;
  }
  let payload = body;
  if (typeof body === "object" && !Buffer.isBuffer(body)) {
    payload = JSON.stringify(body);
    if (!res.hasHeader("Content-Type")) {
      res.setHeader("Content-Type", "application/json; charset=utf-8");
    }
  }
  res.setHeader("Content-Length", Buffer.byteLength(payload));
  res.end(payload);
}

async function handle(req, res) {
  const url = new URL(req.url, "http://localhost");
  if (!url.pathname.startsWith(PREFIX)) {
    send(res, 404, [], [], "Not Found");
    return;
  }
  const nextauth = url.pathname.slice(PREFIX.length).split("/").filter(Boolean);
  const query = Object.fromEntries(url.searchParams);
  const body = await parseBody(req);
  const handler = await AuthHandler({
    req: {
      body,
      query,
      cookies: cookie.parse(req.headers.cookie || ""),
      headers: req.headers,
      method: req.method,
      action: nextauth[0],
      providerId: nextauth[1],
      error: query.error ?? nextauth[1],
    },
    options,
  });
  const cookies = (handler.cookies || []).map((c) => cookie.serialize(c.name, c.value, c.options));
  const headers = handler.headers || [];
  if (handler.redirect) {
    if (body?.json !== "true") {
      send(res, 302, [...headers, { key: "Location", value: handler.redirect }], cookies);
      return;
    }
    send(res, handler.status ?? 200, headers, cookies, { url: handler.redirect });
    return;
  }
  send(res, handler.status ?? 200, headers, cookies, handler.body);
}

function serve(port) {
  const server = http.createServer((req, res) => {
    handle(req, res).catch((error) => {
      if (!res.headersSent) send(res, error.status || 500, [], [], String(error.message));
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 65_000;
  server.listen(port, "127.0.0.1", () => {
    process.stdout.write(`${JSON.stringify({ listening: port })}\n`);
  });
  for (const signal of ["SIGTERM", "SIGINT"]) process.on(signal, () => process.exit(0));
}

async function mint() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  const { claims, maxAge } = JSON.parse(Buffer.concat(chunks).toString());
  const token = await encode({ token: claims, secret: process.env.NEXTAUTH_SECRET, maxAge });
  process.stdout.write(`${token}\n`);
}

const [command, port] = process.argv.slice(2);
if (command === "serve") serve(Number(port));
else if (command === "mint") mint().catch((e) => { process.stderr.write(`${e.stack}\n`); process.exit(1); });
else {
  process.stderr.write("usage: nextauth_core.js serve PORT | mint\n");
  process.exit(2);
}

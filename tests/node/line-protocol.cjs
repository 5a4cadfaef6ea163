// The line protocol of the oracles (oracle.js, authjs-oracle.mjs): one JSON request per
// line on stdin, one JSON response per line on stdout, answered strictly in order.
// Response: {"ok": true, "result": ...} or {"ok": false, "error": "..."}; an `id` in the
// request is echoed back.
"use strict";

const readline = require("node:readline");

// stdout carries only responses: anything a library logs goes to stderr. Returns a logger
// for the libraries that take one.
function quietConsole() {
  const toStderr = (...args) => console.error(...args);
  console.log = console.info = console.debug = console.warn = toStderr;
  return { error: toStderr, warn: toStderr, debug: toStderr };
}

// An op whose thrown error is its answer, as {"error": "<name>: <message>"} (how the
// libraries' decode says "not a valid token").
function reportingThrown(op) {
  return async (request) => {
    try {
      return await op(request);
    } catch (err) {
      return { error: `${err.name}: ${err.message}` };
    }
  };
}

async function handle(ops, line) {
  let request;
  try {
    request = JSON.parse(line);
    const op = ops[request.op];
    if (!op) throw new Error(`unknown op: ${request.op}`);
    const result = await op(request);
    return { id: request.id, ok: true, result: result === undefined ? null : result };
  } catch (err) {
    return { id: request && request.id, ok: false, error: `${err.name}: ${err.message}` };
  }
}

function serve(ops) {
  let queue = Promise.resolve();
  readline.createInterface({ input: process.stdin }).on("line", (line) => {
    if (!line.trim()) return;
    queue = queue
      .then(() => handle(ops, line))
      .then((response) => process.stdout.write(`${JSON.stringify(response)}\n`));
  });
}

module.exports = { quietConsole, reportingThrown, serve };

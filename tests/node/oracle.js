// The real next-auth v4 (`next-auth/jwt`) as a line-oriented oracle for the Python tests.
//
// Protocol: one JSON request per line on stdin, one JSON response per line on stdout.
//   {"op": "encode",   "token": {...}, "secret": "...", "maxAge": 3600, "salt": ""}
//   {"op": "decode",   "token": "...", "secret": "...", "salt": ""}
//   {"op": "getToken", "cookies": {...}, "headers": {...}, "secret": "...", "secureCookie": false}
// Response: {"ok": true, "result": ...} or {"ok": false, "error": "..."}; an `id` in the
// request is echoed back. `decode` reports a thrown error as result {"error": message},
// because throwing is how next-auth's decode says "not a valid token".
"use strict";

const readline = require("node:readline");
const { encode, decode, getToken } = require("next-auth/jwt");

// stdout carries only responses: anything next-auth logs goes to stderr.
const toStderr = (...args) => console.error(...args);
console.log = console.info = console.debug = console.warn = toStderr;
const logger = { error: toStderr, warn: toStderr, debug: toStderr };

const ops = {
  encode: ({ token, secret, maxAge, salt }) => encode({ token, secret, maxAge, salt }),

  decode: async ({ token, secret, salt }) => {
    try {
      return await decode({ token, secret, salt });
    } catch (err) {
      return { error: `${err.name}: ${err.message}` };
    }
  },

  // Plain objects, as the Pages Router hands them to getToken (`req.cookies` is parsed).
  getToken: ({ cookies = {}, headers = {}, secret, secureCookie = false }) =>
    getToken({ req: { cookies, headers }, secret, secureCookie, logger }),
};

async function handle(line) {
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

// Requests are answered strictly in order, one line each.
let queue = Promise.resolve();
readline.createInterface({ input: process.stdin }).on("line", (line) => {
  if (!line.trim()) return;
  queue = queue
    .then(() => handle(line))
    .then((response) => process.stdout.write(`${JSON.stringify(response)}\n`));
});

// The real next-auth v4 (`next-auth/jwt`) as a line-oriented oracle for the Python tests.
//
// Protocol: one JSON request per line on stdin, one JSON response per line on stdout.
//   {"op": "encode",   "token": {...}, "secret": "...", "maxAge": 3600, "salt": ""}
//   {"op": "decode",   "token": "...", "secret": "...", "salt": ""}
//   {"op": "getToken", "cookies": {...}, "headers": {...}, "secret": "...", "secureCookie": false}
// Response: {"ok": true, "result": ...} or {"ok": false, "error": "..."} (line-protocol.cjs).
// `decode` reports a thrown error as result {"error": message}, because throwing is how
// next-auth's decode says "not a valid token".
"use strict";

const { encode, decode, getToken } = require("next-auth/jwt");
const { quietConsole, reportingThrown, serve } = require("./line-protocol.cjs");

const logger = quietConsole();

const ops = {
  encode: ({ token, secret, maxAge, salt }) => encode({ token, secret, maxAge, salt }),

  decode: reportingThrown(({ token, secret, salt }) => decode({ token, secret, salt })),

  // Plain objects, as the Pages Router hands them to getToken (`req.cookies` is parsed).
  getToken: ({ cookies = {}, headers = {}, secret, secureCookie = false }) =>
    getToken({ req: { cookies, headers }, secret, secureCookie, logger }),
};

serve(ops);

// The real Auth.js v5 core (`@auth/core`) as a line-oriented oracle for the Python tests,
// the sibling of oracle.js (next-auth v4), with the same protocol:
//   {"op": "encode",   "token": {...}, "secret": "..." | [...], "maxAge": 3600, "salt": "authjs.session-token"}
//   {"op": "decode",   "token": "...", "secret": "..." | [...], "salt": "authjs.session-token"}
//   {"op": "getToken", "headers": {...}, "secret": "..." | [...], "secureCookie": false}
//   {"op": "session",  "headers": {...}, "secret": "..." | [...], "url": "http://localhost:3000"}
// `session` asks @auth/core's own `Auth()` handler for GET <url>/api/auth/session (JWT
// strategy, no providers) and answers {status, body, setCookie}.
// Response: {"ok": true, "result": ...} or {"ok": false, "error": "..."} (line-protocol.cjs).
// `decode` reports a thrown error as result {"error": message}.
import { Auth } from "@auth/core";
import { decode, encode, getToken } from "@auth/core/jwt";
import lineProtocol from "./line-protocol.cjs";

const { quietConsole, reportingThrown, serve } = lineProtocol;
const logger = quietConsole();

const ops = {
  encode: ({ token, secret, maxAge, salt }) => encode({ token, secret, maxAge, salt }),

  decode: reportingThrown(({ token, secret, salt }) => decode({ token, secret, salt })),

  // @auth/core's getToken parses the Cookie header itself (not `req.cookies`).
  getToken: ({ headers = {}, secret, secureCookie = false }) =>
    getToken({ req: { headers }, secret, secureCookie, logger }),

  session: async ({ headers = {}, secret, url = "http://localhost:3000" }) => {
    const request = new Request(`${url}/api/auth/session`, { headers });
    const config = { secret, basePath: "/api/auth", trustHost: true, providers: [], logger };
    const response = await Auth(request, config);
    return {
      status: response.status,
      body: await response.json(),
      setCookie: response.headers.getSetCookie(),
    };
  },
};

serve(ops);

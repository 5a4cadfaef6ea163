// Times next-auth's own `decode` (next-auth/jwt, the pinned 4.24.x in tests/node).
//
// Input, one JSON object on stdin: {"token", "secret", "number", "repeats"}.
// Output, one JSON object on stdout: the best of `repeats` runs of `number` sequential
// awaited decodes, as {"ops_per_second", "best_seconds", "number", "repeats", "node",
// "next_auth"}. Like bench/inprocess.py: same token every time, best repeat wins.
"use strict";

const path = require("node:path");
const { createRequire } = require("node:module");

const nodeDir = path.resolve(__dirname, "..", "tests", "node");
const load = createRequire(path.join(nodeDir, "package.json"));
const { decode } = load("next-auth/jwt");
const fs = require("node:fs");
const nextAuthVersion = JSON.parse(
  fs.readFileSync(path.join(nodeDir, "node_modules", "next-auth", "package.json"), "utf8"),
).version;

async function main() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  const { token, secret, number, repeats } = JSON.parse(Buffer.concat(chunks).toString());

  const claims = await decode({ token, secret });
  if (!claims || typeof claims.sub !== "string") throw new Error("next-auth did not decode the token");

  for (let i = 0; i < Math.min(number, 1000); i++) await decode({ token, secret }); // warm-up
  let best = Infinity;
  for (let r = 0; r < repeats; r++) {
    const started = process.hrtime.bigint();
    for (let i = 0; i < number; i++) await decode({ token, secret });
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    best = Math.min(best, seconds);
  }
  process.stdout.write(
    `${JSON.stringify({
      ops_per_second: number / best,
      best_seconds: best,
      number,
      repeats,
      node: process.version,
      next_auth: nextAuthVersion,
    })}\n`,
  );
}

main().catch((err) => {
  process.stderr.write(`${err.stack || err}\n`);
  process.exit(1);
});

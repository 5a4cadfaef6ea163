// Regenerates the next-auth v4 part of tests/data/vectors/vectors.json with the real
// next-auth@4.24.15 installed here (`make install` puts it in tests/node/node_modules).
//
//   node tests/node/make-vectors.cjs            prints the regenerated entries as JSON
//   node tests/node/make-vectors.cjs --write    puts them into tests/data/vectors/vectors.json
//
// The inputs (payloads, secrets, salts) are read from the committed file, so a rerun
// regenerates the same vectors: the key derivations byte for byte, the tokens with fresh
// random IVs (and fresh iat/exp/jti), the decode results and errors exactly. Entries not
// listed in REGENERATED (hand-built tokens, fixed-IV anatomy, chunking, Auth.js v5) and the
// transcripts stay as recorded; tests/data/README.md says so.
"use strict";

const fs = require("node:fs");
const path = require("node:path");
const hkdf = require("@panva/hkdf").default;
const { compactDecrypt } = require("jose");
const { encode, decode } = require("next-auth/jwt");

const FILE = path.join(__dirname, "..", "data", "vectors", "vectors.json");
// Read from disk: next-auth and jose do not export their package.json.
const versionOf = (name) =>
  JSON.parse(fs.readFileSync(path.join(__dirname, "node_modules", name, "package.json"))).version;
const EXPIRED_AT = 1600000000; // 2020-09-13: expired for any plausible clock
const REGENERATED = [
  "v4_valid_long_maxage",
  "v4_valid_default_maxage_30d",
  "v4_expired",
  "v4_different_secret",
  "v4_tampered_ciphertext",
  "v4_malformed_not_jwe",
  "v4_malformed_three_parts_jws_like",
  "v4_empty_string",
  "v4_oauth_state_cookie_salted",
];

function describe(error) {
  return `${error.name} (${error.code}): ${error.message}`;
}

async function tryDecode(token, secret, salt) {
  try {
    return { decoded: await decode({ token, secret, salt }), decode_error: null };
  } catch (error) {
    return { decoded: null, decode_error: describe(error) };
  }
}

// next-auth/jwt's own derivation (jwt/index.js getDerivedEncryptionKey).
const infoFor = (salt) => `NextAuth.js Generated Encryption Key${salt ? ` (${salt})` : ""}`;
const derive = (secret, salt) => hkdf("sha256", secret, salt, infoFor(salt), 32);

async function kdfEntry(entry) {
  const key = await derive(entry.secret, entry.salt);
  return { ...entry, info: infoFor(entry.salt), derived_key_hex: Buffer.from(key).toString("hex") };
}

// The claims of a token whatever its exp says: the JWE opened with next-auth's key.
async function claimsIgnoringExpiry(token, secret, salt) {
  const { plaintext } = await compactDecrypt(token, await derive(secret, salt));
  return JSON.parse(Buffer.from(plaintext).toString("utf8"));
}

function flipFirstCiphertextByte(token) {
  const parts = token.split(".");
  const ciphertext = Buffer.from(parts[3], "base64url");
  ciphertext[0] ^= 0x01;
  parts[3] = ciphertext.toString("base64url");
  return parts.join(".");
}

async function vectorEntry(recorded, now) {
  const { secret, salt } = recorded;
  const payload = recorded.input_payload;
  switch (recorded.name) {
    case "v4_valid_long_maxage":
    case "v4_valid_default_maxage_30d":
    case "v4_oauth_state_cookie_salted": {
      const token = payload ?? { ...recorded.decoded };
      for (const claim of ["iat", "exp", "jti"]) delete token[claim];
      const maxAge = recorded.maxAge ?? undefined;
      const encoded = await encode({ token, secret, salt, maxAge });
      return { ...recorded, token: encoded, ...(await tryDecode(encoded, secret, salt)) };
    }
    case "v4_expired": {
      const maxAge = EXPIRED_AT - now;
      const encoded = await encode({ token: payload, secret, salt, maxAge });
      return {
        ...recorded,
        maxAge,
        token: encoded,
        ...(await tryDecode(encoded, secret, salt)),
        payload_if_exp_ignored: await claimsIgnoringExpiry(encoded, secret, salt),
      };
    }
    case "v4_different_secret": {
      const other = recorded.encoded_with_secret;
      const encoded = await encode({ token: payload, secret: other, salt, maxAge: recorded.maxAge });
      const own = await tryDecode(encoded, other, salt);
      return {
        ...recorded,
        token: encoded,
        ...(await tryDecode(encoded, secret, salt)),
        decoded_with_encoding_secret: own.decoded,
      };
    }
    case "v4_tampered_ciphertext": {
      const original = await encode({ token: { sub: "tamper" }, secret, salt });
      const token = flipFirstCiphertextByte(original);
      return { ...recorded, original_token: original, token, ...(await tryDecode(token, secret, salt)) };
    }
    default: // malformed or empty tokens: only the decode is regenerated
      return { ...recorded, ...(await tryDecode(recorded.token, secret, salt)) };
  }
}

async function main() {
  const recorded = JSON.parse(fs.readFileSync(FILE, "utf8"));
  const now = Math.floor(Date.now() / 1000);
  const kdf = await Promise.all(
    recorded.kdf.filter((entry) => entry.library === "next-auth v4").map(kdfEntry),
  );
  const byName = new Map(recorded.vectors.map((entry) => [entry.name, entry]));
  const vectors = [];
  for (const name of REGENERATED) vectors.push(await vectorEntry(byName.get(name), now));
  const versions = {
    "next-auth": versionOf("next-auth"),
    jose_used_by_next_auth: versionOf("jose"),
    "@panva/hkdf": versionOf("@panva/hkdf"),
    node: process.version,
  };
  const regenerated = { generated_at: new Date(now * 1000).toISOString(), versions, kdf, vectors };
  if (!process.argv.includes("--write")) {
    process.stdout.write(`${JSON.stringify(regenerated, null, 2)}\n`);
    return;
  }
  const fresh = new Map([...kdf.map((e) => [`kdf:${e.salt}`, e]), ...vectors.map((e) => [e.name, e])]);
  recorded.kdf = recorded.kdf.map((e) => (e.library === "next-auth v4" ? fresh.get(`kdf:${e.salt}`) : e));
  recorded.vectors = recorded.vectors.map((e) => fresh.get(e.name) ?? e);
  recorded.versions = { ...recorded.versions, ...versions };
  recorded.generated_at = regenerated.generated_at;
  recorded.generated_at_epoch = now;
  fs.writeFileSync(FILE, `${JSON.stringify(recorded, null, 2)}\n`);
  process.stderr.write(`wrote ${FILE}: ${kdf.length} key derivations, ${vectors.length} vectors\n`);
}

main().catch((error) => {
  process.stderr.write(`${error.stack}\n`);
  process.exit(1);
});

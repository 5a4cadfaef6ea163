// A real OpenID Connect provider for the end-to-end tests: oauth2-mock-server (pinned in
// package-lock.json) on a free loopback port. It prints one JSON line, {"issuer": …},
// once it listens, and runs until stdin closes.
//
// The person who signs in is chosen through the authorization request's `login_hint`
// (authsvc forwards it from the sign-in POST's query string): the ID token then carries
// sub "sub-<hint>", email <hint>, email_verified true, and a name. Without a hint the
// user is ada@example.com.
import { OAuth2Server } from "oauth2-mock-server";

const server = new OAuth2Server();
await server.issuer.keys.generate("RS256");

const hintByCode = new Map();
server.service.on("beforeAuthorizeRedirect", (redirect, req) => {
  const hint = new URL(req.url, "http://idp").searchParams.get("login_hint");
  const code = redirect.url.searchParams.get("code");
  if (hint && code) hintByCode.set(code, hint);
});
server.service.on("beforeTokenSigning", (token, req) => {
  const email = hintByCode.get(req.body?.code) ?? "ada@example.com";
  Object.assign(token.payload, {
    sub: `sub-${email}`,
    email,
    email_verified: true,
    name: email.split("@")[0],
    picture: `https://images.example.com/${encodeURIComponent(email)}.png`,
  });
});

await server.start(0, "127.0.0.1");
process.stdout.write(JSON.stringify({ issuer: server.issuer.url }) + "\n");
process.stdin.resume();
process.stdin.on("end", async () => {
  await server.stop();
  process.exit(0);
});

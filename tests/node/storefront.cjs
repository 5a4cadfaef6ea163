// The storefront's password code, as a Next.js app on next-auth v4 runs it, for the Python
// tests of authsvc's Prisma mode: the sign-up hash (`bcrypt.hash(password, cost)`) and the
// Credentials provider's `authorize` (`bcrypt.compare` against the `users` row).
//
// Protocol (line-protocol.cjs): one JSON request per line on stdin, one response per line.
//   {"op": "hash", "password": "...", "cost": 10, "library": "bcryptjs" | "bcryptjs-2"}
//   {"op": "authorize", "credentials": {"email", "password"}, "row": {...} | null, "library": ...}
// `row` is what the storefront's `prisma.user.findUnique({ where: { email } })` returned;
// the tests read it from PostgreSQL with the same SELECT. `authorize` answers the user
// object next-auth would put in the session, or null.
"use strict";

const Credentials = require("next-auth/providers/credentials").default;
const { quietConsole, serve } = require("./line-protocol.cjs");

quietConsole();

// bcryptjs 3 writes $2b$ hashes; the 2.4 line, which most storefronts were built on, $2a$.
const libraries = { bcryptjs: require("bcryptjs"), "bcryptjs-2": require("bcryptjs-2") };

function library(name = "bcryptjs") {
  const found = libraries[name];
  if (!found) throw new Error(`unknown library: ${name}`);
  return found;
}

// The storefront's provider, as its [...nextauth] route declares it.
function storefrontProvider(row, bcrypt) {
  return Credentials({
    name: "Credentials",
    credentials: { email: { type: "email" }, password: { type: "password" } },
    async authorize(credentials) {
      if (!credentials?.email || !credentials?.password) return null;
      const user = row; // prisma.user.findUnique({ where: { email: credentials.email } })
      if (!user || !user.password) return null;
      const valid = await bcrypt.compare(credentials.password, user.password);
      if (!valid) return null;
      return { id: user.id, email: user.email, name: user.name, role: user.role };
    },
  });
}

const ops = {
  hash: ({ password, cost = 10, library: name }) => library(name).hash(password, cost),

  authorize: ({ credentials, row, library: name }) =>
    storefrontProvider(row, library(name)).options.authorize(credentials, {}),
};

serve(ops);

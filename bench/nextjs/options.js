// next-auth's options for both next-auth peers of the benchmark: the core handler behind
// a plain Node `http` server (bench/nextauth_core.js) and the Next.js app
// (pages/api/auth/[...nextauth].js). They do what `authsvc serve` does by default for the
// storefront, so that every server answers the same session for the same cookie:
//
// - JWT sessions of 30 days, the secret from NEXTAUTH_SECRET, NEXTAUTH_URL as the base;
// - one Credentials provider (authsvc's only provider when no OAuth app is configured);
//   the benchmark never signs in, so `authorize` is never reached;
// - the storefront's callbacks as authsvc's defaults implement them
//   (src/authsvc/callbacks.py): the jwt callback keeps a token that carries a role as it
//   is (no database call), and the session callback maps id, name, role, fundraiserId
//   (when set) and avatar (as image) onto session.user.
//
// `Credentials` is passed in, so that each peer uses the next-auth it loaded itself.
"use strict";

const THIRTY_DAYS = 30 * 24 * 60 * 60;

function authOptions(Credentials) {
  return {
    secret: process.env.NEXTAUTH_SECRET,
    session: { strategy: "jwt", maxAge: THIRTY_DAYS },
    providers: [
      Credentials({
        name: "Credentials",
        credentials: { email: { label: "Email", type: "email" }, password: { type: "password" } },
        authorize: async () => null,
      }),
    ],
    callbacks: {
      async jwt({ token, user }) {
        if (user) {
          token.id = user.id;
          token.role = user.role;
          token.fundraiserId = user.fundraiserId ?? null;
          token.avatar = user.image ?? null;
        }
        return token;
      },
      async session({ session, token }) {
        const user = { ...session.user };
        user.id = token.id ?? token.sub;
        if ("name" in token) user.name = token.name;
        if (token.role != null) user.role = token.role;
        if (token.fundraiserId != null) user.fundraiserId = token.fundraiserId;
        if (token.avatar != null) user.image = token.avatar;
        return { ...session, user };
      },
    },
  };
}

module.exports = { authOptions };

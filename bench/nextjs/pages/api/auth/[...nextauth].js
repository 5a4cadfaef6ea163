// The only page of the benchmark's Next.js peer: next-auth's documented Pages-Router route.
import NextAuth from "next-auth";
import Credentials from "next-auth/providers/credentials";

import { authOptions } from "../../../options";

export default NextAuth(authOptions(Credentials));

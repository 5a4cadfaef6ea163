"""authsvc: NextAuth.js v4-compatible authentication as a stand-alone service."""

__version__ = "0.1.0"

"""Sign-in flows: what happens between a posted form or a provider's callback and a new
session, with no HTTP framework in sight (the routes parse, call a flow and shape)."""

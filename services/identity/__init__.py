"""The local identity provider: Clerk's role in local mode and tests (signs RS256 tokens, serves their JWKS)."""

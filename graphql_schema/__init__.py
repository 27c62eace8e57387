"""Strawberry GraphQL: thin types over the domain, resolvers that call services (no SQL here)."""

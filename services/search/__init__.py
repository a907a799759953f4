"""Vendor search: one provider interface (`provider.SearchProvider`), Algolia and self-hosted PostgreSQL behind it.

A package of its own beside the services because two of them use it (search sync writes the index, the HTTP gateway
queries it) and its records hold vendor fields, which the domain-free kit must not know about.
"""

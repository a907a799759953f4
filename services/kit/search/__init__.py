"""Vendor search: one provider interface (`provider.SearchProvider`), Algolia and self-hosted PostgreSQL behind it.

It is in the kit because two services use it: search sync writes the index, the HTTP gateway queries it.
"""

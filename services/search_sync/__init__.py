"""Search sync (HTTP :5006, health and metrics only): keeps the search index equal to the vendor table, from events.

It consumes `vendor.>` (created, updated, deleted, location.updated) from JetStream with a durable pull consumer and
merges each change into the index by version, so redeliveries and reorderings change nothing. The system we replace
subscribed to a subject that matched nothing; here a test checks index == table after every kind of crash.
"""

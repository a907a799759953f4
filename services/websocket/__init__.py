"""The Socket.IO gateway (SPEC section 4): live vendor locations, user viewports and vendor presence.

Users (`/user`) send their map viewport and get the vendors inside it, then every move of those vendors; vendors
(`/vendor`) publish their position. Every socket is authenticated by the kit's one token check, a vendor may only
speak for vendors it owns, and every payload is validated before anything is called. Several replicas share one
Redis: python-socketio's Redis manager carries room emits between them, and presence and watched rooms live in
Redis too, so a restarted replica loses nothing. This package never imports another service: it talks to the user
and location services over gRPC.
"""

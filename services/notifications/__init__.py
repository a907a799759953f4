"""The notifications service: favourites, and the notifications events turn into (stored, read/unread, pushed)."""

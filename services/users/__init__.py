"""The user service (gRPC :5000): users, their integrations (Clerk, RevenueCat) and subscriptions."""

"""Notifications: a durable per-user inbox and an outbox of webhook deliveries, both written in
the transaction of the event they announce."""

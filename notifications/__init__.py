"""Failure notifications by email: an outbox consumer that mails the people who asked for an event (issue 16)."""

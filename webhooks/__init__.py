"""Signed webhooks (Standard Webhooks) after rotations and gateway changes: an outbox consumer with a delivery log (issue 16)."""

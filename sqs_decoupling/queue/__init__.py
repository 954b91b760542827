"""The encrypted queue: EncryptedQueue (KMS, DLQ, TLS-only, alarms), its client-side key, and envelope/ (the
client-side encryption the producers and consumers run)."""

"""Business operations: plain functions that take `now`, own the transaction, raise DomainError."""

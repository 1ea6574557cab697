"""Report support that is not a page of its own: the per-month rollups the service level reports read."""

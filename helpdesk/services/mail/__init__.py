"""Email as a channel: parsing incoming mail, reply addresses, importing, fetching over IMAP."""

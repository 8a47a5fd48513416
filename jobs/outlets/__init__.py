"""Publishing to outlets: one `Publisher` per configured outlet (see `jobs.outlets.base`)."""

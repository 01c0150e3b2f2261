"""crmwh: the customer-loyalty warehouse (ingest, publish, the CLI and configuration)."""

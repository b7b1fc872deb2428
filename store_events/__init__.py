"""Store webhooks -> generic store events; one module per store."""

"""Encoders, task heads and the LightningModule that joins them."""

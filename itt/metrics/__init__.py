"""Evaluation metrics and benchmark scorers."""

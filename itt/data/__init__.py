"""Task cards, dataset loading, tokenization and batching."""

"""itt: intermediate-task training experiments."""

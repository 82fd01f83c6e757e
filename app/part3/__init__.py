"""Part 3: the production service (see README.md here)."""

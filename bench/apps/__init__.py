"""The servers the benchmark compares the service with: its floors and the workshop's own code."""

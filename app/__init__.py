"""Machine-learning plumbing and staged services of the FastAPI workshop."""

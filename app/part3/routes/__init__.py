"""One router per topic; main.py includes them all."""

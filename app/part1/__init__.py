"""Part 1's reference service: the penguin model exported by notebooks/penguins.ipynb, served."""

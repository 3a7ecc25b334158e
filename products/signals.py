"""What the catalogue tells the apps above it; they connect their reactions in ready()."""

from django.dispatch import Signal

# Sent after a signed-in user's search is recorded, with `user_id`.
product_searched = Signal()

"""What the marketer learns from the store: retention figures, customer segments and campaign results."""

"""Grade-distribution models in pure PyTorch (never imports Django)."""

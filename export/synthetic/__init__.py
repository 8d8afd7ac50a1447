"""senclr stage."""

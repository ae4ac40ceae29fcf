"""Domain events: what changed, published after every service write, delivered to subscribers."""

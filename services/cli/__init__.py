"""The `venta` command: run one service, apply migrations, or bring the whole platform up locally."""

"""`opsctl`: operational commands (migrate, create-topics, config, up)."""

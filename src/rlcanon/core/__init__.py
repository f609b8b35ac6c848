"""Pure building blocks shared by every algorithm: returns, losses, schedules, config, checkpoints."""

"""Policy training: asymmetric actor-critic PPO (LSTM or MLP), curriculum and ADR, checkpoints."""

"""Local helper servers kindml starts itself (Redis for Feast's online store)."""

"""Running and compiling kindml's KFP pipelines (local driver, IR compiler, run summaries)."""

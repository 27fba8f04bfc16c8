"""Serving: the KServe predictor of any workload's model, the signature contract, online features and the local server lifecycle."""

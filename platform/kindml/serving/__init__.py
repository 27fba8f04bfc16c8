"""Serving: the KServe predictor of the fraud model, its request schema, online features and the local server lifecycle."""

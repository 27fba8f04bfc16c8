"""The recommendation capstone (``kindml run recsys``): ratings, a two-tower model, batch top-K written back to Feast."""

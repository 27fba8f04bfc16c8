"""Reading, checking and writing raw tables (:mod:`kindml.data.load`); generators live with their workloads."""

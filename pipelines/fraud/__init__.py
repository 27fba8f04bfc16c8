"""The fraud capstone (workload ``fraud``): everything fraud-specific, on top of the platform core.

- ``schema.py`` -- the raw data contract (transactions, accounts) and allowed values;
- ``data.py`` -- the seeded world, history and live traffic generator, drift and corruption knobs;
- ``suites.py`` -- the Great Expectations suites;
- ``aggregates.py``, ``definitions.py`` -- daily account / merchant snapshots and their Feast objects;
- ``preprocess.py``, ``model.py`` -- the engineered-feature assembler and the model kit (platform MLP);
- ``serving.py`` -- the predictor's request contract, answers and drift columns;
- ``workload.py`` -- :class:`FraudWorkload`, tying them to the platform's stages;
- ``pipeline.py`` -- the KFP pipeline (``kindml run fraud``).
"""

"""The text capstone (workload ``text``): support tickets → intent with a pretrained MiniLM encoder.

- ``data.py`` -- the seeded ticket generator (8 intents, customers, drift, defects);
- ``suites.py`` -- Great Expectations suites (empty / too long / non-text, unknown labels, duplicates);
- ``features.py`` -- daily customer snapshots and their Feast objects (point-in-time context);
- ``model.py`` -- the model kit: tokenizer, MiniLM encoder, head recipe (frozen or top layers unfrozen), ONNX module;
- ``quantize.py`` -- INT8 dynamic vs FP32 for the served model;
- ``serving.py`` -- the predictor's request contract, answers and drift columns (embedding PCs, length, unknown tokens);
- ``workload.py`` -- :class:`TextWorkload`; ``pipeline.py`` -- the KFP pipeline (``kindml run text``).
"""

"""The text capstone (workload ``text``): support tickets → intent with a pretrained MiniLM encoder.

- ``data.py`` -- the seeded ticket generator (8 intents, customers, drift, defects);
- ``suites.py`` -- Great Expectations suites (empty / too long / non-text, unknown labels, duplicates);
- ``features.py`` -- daily customer snapshots and their Feast objects (point-in-time context);
- ``model.py`` -- the model kit: tokenizer, MiniLM encoder, head recipe (frozen or top layers unfrozen), ONNX module;
- ``quantize.py`` -- the served variant: FP32, fused FP32 or INT8, the fastest within the macro-F1 budget (the generic chooser);
- ``serving.py`` -- the predictor's request contract, answers and drift columns (embedding PCs, length, unknown tokens);
- ``workload.py`` -- :class:`TextWorkload`; ``pipeline.py`` -- the KFP pipeline (``kindml run text``).
"""

from kindml.components.batch.component import batch

__all__ = ["batch"]

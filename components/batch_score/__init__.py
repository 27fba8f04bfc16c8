from kindml.components.batch_score.component import batch_score

__all__ = ["batch_score"]

from kindml.components.features.component import features

__all__ = ["features"]

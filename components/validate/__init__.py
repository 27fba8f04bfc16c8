from kindml.components.validate.component import validate

__all__ = ["validate"]

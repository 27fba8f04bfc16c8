from kindml.components.register.component import register

__all__ = ["register"]

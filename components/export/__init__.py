from kindml.components.export.component import export

__all__ = ["export"]

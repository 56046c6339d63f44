"""The pretrained-model folder format and the local model store."""

from .model_folder import LoadedModel, load_model_folder, read_config, save_model_folder
from .store import add_model, list_models, load_model, remove_model, resolve_model, store_root

__all__ = [
    "LoadedModel",
    "add_model",
    "list_models",
    "load_model",
    "load_model_folder",
    "read_config",
    "remove_model",
    "resolve_model",
    "save_model_folder",
    "store_root",
]

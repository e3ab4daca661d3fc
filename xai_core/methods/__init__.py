"""Attribution methods: one module per family, all behind :mod:`.base`'s contract."""

from .base import METHODS, Attribution, Method, Param, get_method, list_methods, register_method

__all__ = ["METHODS", "Attribution", "Method", "Param", "get_method", "list_methods",
           "register_method"]

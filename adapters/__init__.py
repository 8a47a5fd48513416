"""Messenger adapters: one module or package per messenger."""

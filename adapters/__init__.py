"""Messenger adapters: one package per messenger, each exporting one descriptor
(`MESSENGER`, see bot/messenger.py) that app/messengers.py lists; memory.py is the
in-process adapter of the tests and benchmarks."""

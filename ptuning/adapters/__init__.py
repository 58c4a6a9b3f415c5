"""Adapter folders: files.py writes and reads them, load.py rebuilds a model from one, peft.py
converts to and from peft's format, bank.py serves several adapters over one backbone."""

"""The pure order domain: values, the order lifecycle, events, commands and errors.

Nothing here does I/O, reads a clock or holds global state; it imports the standard library only
(numpy is allowed), which import-linter enforces.
"""

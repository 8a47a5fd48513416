"""Command, button, message, reaction and prompt handlers: thin (parse, call a service,
answer). Each module ends with its part of the handler table (`HANDLERS`); the top floor
combines them (app/handlers.py). Importing a module registers nothing.
"""

"""The top floor: assembles the program (wiring), the `pinwall` CLI and the HTTP app.

It may import every other package (adapters, jobs, bot, store); nothing imports it.
"""

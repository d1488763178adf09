"""Audience: lists, subscribers, consent, suppression, list files and recipient tokens.

Keeps who may receive what in the database and imports the spreadsheets list keepers
send. Does not render issues or send mail. May import the root modules only.
"""

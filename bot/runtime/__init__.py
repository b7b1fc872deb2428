"""The runtime: the loops that move work through the database (inbox, processor,
sender, pacing). All database I/O of deciding and sending lives here.
"""

"""The BGP-4 protocol: a sans-IO core (wire, fsm, rib) and one asyncio transport.

Imports go one way: wire <- fsm <- rib/session <- transport <- speaker.
"""
